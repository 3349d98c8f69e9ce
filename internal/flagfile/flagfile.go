// Package flagfile sets a command's flags from a TOML file whose keys are
// the flag names, so that every flag is settable from the file without
// more code, and a flag given on the command line wins over the file.
//
// The file is flat: one `name = value` per flag, no tables and no dotted
// keys. A value is a string, an integer, a float, a boolean, or an array
// of those for a repeatable flag (an array replaces the flag's default; a
// single value of a repeatable flag is a list of one). Durations are
// strings ("5m"). Unknown keys, keys given twice, lists for single-valued
// flags and values the flag refuses are errors naming the file, the line
// and the key.
package flagfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
	"github.com/spf13/pflag"
)

// Error is a problem in the file at one line. Key is empty for a syntax
// error.
type Error struct {
	File string
	Line int
	Key  string
	Err  error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %q: %v", e.File, e.Line, e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Errors an Error wraps.
var (
	ErrUnknownKey = errors.New("unknown key (keys are the command's flag names)")
	ErrSyntax     = errors.New("not valid TOML")
)

// Apply reads the TOML file at path and sets the flags of fs it names,
// except those already set on the command line (pflag's Changed) and
// those named in skip (which are unknown keys here, like the flag that
// names the file itself).
func Apply(fs *pflag.FlagSet, path string, skip ...string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return ApplyBytes(fs, path, b, skip...)
}

// ApplyBytes is Apply on the file's contents; name is the file's name in
// errors.
func ApplyBytes(fs *pflag.FlagSet, name string, b []byte, skip ...string) error {
	// Decode first: its errors carry the line of a syntax error.
	var values map[string]any
	if err := toml.Unmarshal(b, &values); err != nil {
		return syntaxError(name, err)
	}
	keys, err := keyLines(name, b)
	if err != nil {
		return err
	}
	for _, k := range keys {
		bad := func(err error) error { return &Error{File: name, Line: k.line, Key: k.name, Err: err} }
		f := fs.Lookup(k.name)
		if f == nil || f.Hidden || contains(skip, k.name) {
			return bad(ErrUnknownKey)
		}
		if f.Changed {
			continue // the command line wins
		}
		vals, list, err := texts(values[k.name])
		if err != nil {
			return bad(err)
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			if err := sv.Replace(vals); err != nil {
				return bad(err)
			}
			continue
		}
		if list {
			return bad(errors.New("takes one value, not a list"))
		}
		if err := f.Value.Set(vals[0]); err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) {
				err = ne.Err // "invalid syntax", "value out of range": the rest repeats the value
			}
			return bad(fmt.Errorf("want a %s, not %q: %w", typeName(f), vals[0], err))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// typeName is how an error names what a flag takes.
func typeName(f *pflag.Flag) string {
	switch t := f.Value.Type(); t {
	case "int", "int64", "int32", "uint", "uint64", "uint32":
		return "whole number"
	case "float64", "float32":
		return "number"
	case "bool":
		return "boolean (true or false)"
	case "duration":
		return `duration such as "90s" or "5m"`
	default:
		return t
	}
}

type keyLine struct {
	name string
	line int
}

// keyLines returns the file's keys with their lines, in file order. It
// refuses tables, dotted keys and keys given twice.
func keyLines(name string, b []byte) ([]keyLine, error) {
	var p unstable.Parser
	p.Reset(b)
	var out []keyLine
	seen := map[string]int{}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.KeyValue:
			it := e.Key()
			var parts []string
			var line int
			for it.Next() {
				k := it.Node()
				if line == 0 {
					line = p.Shape(k.Raw).Start.Line
				}
				parts = append(parts, string(k.Data))
			}
			key := strings.Join(parts, ".")
			if len(parts) != 1 {
				return nil, &Error{File: name, Line: line, Key: key, Err: errors.New("dotted keys are not used: keys are the flag names")}
			}
			if first, ok := seen[key]; ok {
				return nil, &Error{File: name, Line: line, Key: key, Err: fmt.Errorf("given twice (first at line %d)", first)}
			}
			seen[key] = line
			out = append(out, keyLine{key, line})
		case unstable.Table, unstable.ArrayTable:
			line := 0
			if it := e.Key(); it.Next() {
				line = p.Shape(it.Node().Raw).Start.Line
			}
			return nil, &Error{File: name, Line: line, Err: errors.New("tables are not used: the file is flat, its keys are the flag names")}
		}
	}
	if err := p.Error(); err != nil {
		return nil, syntaxError(name, err)
	}
	return out, nil
}

// syntaxError turns a go-toml error into an Error with the line.
func syntaxError(name string, err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return &Error{File: name, Line: row, Err: fmt.Errorf("%w: %s", ErrSyntax, strings.TrimPrefix(de.Error(), "toml: "))}
	}
	return &Error{File: name, Err: fmt.Errorf("%w: %v", ErrSyntax, err)}
}

// texts turns a decoded value into the strings a flag's Set takes, and
// whether it was a list.
func texts(v any) ([]string, bool, error) {
	if l, ok := v.([]any); ok {
		out := make([]string, 0, len(l))
		for _, x := range l {
			s, err := text(x)
			if err != nil {
				return nil, true, err
			}
			out = append(out, s)
		}
		return out, true, nil
	}
	s, err := text(v)
	if err != nil {
		return nil, false, err
	}
	return []string{s}, false, nil
}

func text(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case []any:
		return "", errors.New("a list inside a list is not a flag value")
	case map[string]any:
		return "", errors.New("a table is not a flag value")
	}
	return "", fmt.Errorf("a %T is not a flag value (write dates and durations as strings)", v)
}
