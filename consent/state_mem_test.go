package consent

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// memState is a StateStore in memory, for the tests: tables of a saved
// state, and errors to fail a table's reads with.
type memState struct {
	gen    uint64
	ok     bool
	tables map[string]map[string][]byte
	fail   map[string]bool // tables whose reads fail
	saves  int
	puts   int // by the last save
}

var errMemState = errors.New("memState: table unreadable")

func newMemState() *memState {
	return &memState{tables: make(map[string]map[string][]byte), fail: make(map[string]bool)}
}

func (m *memState) Generation() (uint64, error) { return m.gen, nil }

func (m *memState) StateGeneration() (uint64, bool, error) { return m.gen, m.ok, nil }

func (m *memState) StateGet(table string, key []byte, fn func(v []byte) error) error {
	if m.fail[table] {
		return errMemState
	}
	v, ok := m.tables[table][string(key)]
	if !ok {
		v = nil
	}
	return fn(v)
}

func (m *memState) StateScan(table string, prefix, after []byte, desc bool, fn func(k, v []byte) error) error {
	if m.fail[table] {
		return errMemState
	}
	var keys []string
	for k := range m.tables[table] {
		if !strings.HasPrefix(k, string(prefix)) {
			continue
		}
		if after != nil && (!desc && k <= string(after) || desc && k >= string(after)) {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if desc {
		slices.Reverse(keys)
	}
	for _, k := range keys {
		if err := fn([]byte(k), m.tables[table][k]); err != nil {
			return err
		}
	}
	return nil
}

func (m *memState) SaveState(gen uint64, reset bool, fn func(put StatePut) error) error {
	m.ok = false
	if reset {
		m.tables = make(map[string]map[string][]byte)
	}
	m.puts = 0
	err := fn(func(table string, k, v []byte) error {
		m.puts++
		t := m.tables[table]
		if t == nil {
			t = make(map[string][]byte)
			m.tables[table] = t
		}
		if v == nil {
			delete(t, string(k))
		} else {
			t[string(k)] = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.gen, m.ok = gen, true
	m.saves++
	return nil
}

// saveState saves v's state into a new memState.
func saveState(t *testing.T, v *View) *memState {
	t.Helper()
	ms := newMemState()
	if err := v.saveTo(ms, v.count()); err != nil {
		t.Fatal(err)
	}
	return ms
}

// restored returns the view that v's state, saved into a new memState,
// restores (over v's store), and that memState.
func restored(t *testing.T, v *View) (*View, *memState) {
	t.Helper()
	ms := saveState(t, v)
	r, err := restoreFrom(ms, v.store)
	if err != nil {
		t.Fatal(err)
	}
	return r, ms
}
