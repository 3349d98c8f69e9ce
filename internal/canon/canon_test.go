package canon

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

type rec struct {
	A uint64 `cbor:"1,keyasint"`
	B []byte `cbor:"2,keyasint,omitempty"`
	C string `cbor:"3,keyasint,omitempty"`
}

type textKeys struct {
	Long  uint64 `cbor:"bb"`
	Short uint64 `cbor:"z"`
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMarshalDeterministic pins the encoding: shortest forms and map keys
// sorted bytewise by their encoding (so a shorter text key comes first).
func TestMarshalDeterministic(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{rec{A: 1}, "a10101"},
		{rec{A: 24, B: []byte{7}, C: "x"}, "a3011818024107036178"},
		{textKeys{Long: 1, Short: 2}, "a2617a0262626201"},
		{map[string]int{"bb": 1, "z": 2}, "a2617a0262626201"},
		{int64(-1), "20"},
		{uint64(1 << 32), "1b0000000100000000"},
	} {
		got, err := Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("Marshal(%#v) = %x, want %s", tc.v, got, tc.want)
		}
	}
}

func TestUnmarshalStrict(t *testing.T) {
	c := New()
	for _, tc := range []struct {
		name, in  string
		canonical bool // refused with ErrNotCanonical (decodes otherwise)
	}{
		{name: "unknown field", in: "a20101" + "0401"},
		{name: "duplicate key", in: "a2" + "0101" + "0102"},
		{name: "indefinite map", in: "bf0101ff"},
		{name: "indefinite bytes", in: "a20101" + "025f4107ff"},
		{name: "tag", in: "a101c11a00000001"},
		{name: "trailing bytes", in: "a1010100"},
		{name: "invalid utf-8", in: "a2010103" + "61ff"},
		{name: "wrong type", in: "a10161ff"},
		{name: "two-byte integer", in: "a1011801", canonical: true},
		{name: "unsorted keys", in: "a2" + "0241070101", canonical: true},
		{name: "empty byte string kept", in: "a2010102" + "40", canonical: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v rec
			err := c.Unmarshal(mustHex(t, tc.in), &v)
			if err == nil {
				t.Fatalf("accepted %s as %+v", tc.in, v)
			}
			if got := errors.Is(err, ErrNotCanonical); got != tc.canonical {
				t.Errorf("errors.Is(%v, ErrNotCanonical) = %v, want %v", err, got, tc.canonical)
			}
		})
	}
	var v rec
	if err := c.Unmarshal(mustHex(t, "a3011818024107036178"), &v); err != nil || v.A != 24 || !bytes.Equal(v.B, []byte{7}) || v.C != "x" {
		t.Fatalf("canonical input: %+v, %v", v, err)
	}
}

// TestLimits checks that each caller's limits apply to its codec only.
func TestLimits(t *testing.T) {
	array := func(n int) []byte {
		b, err := Marshal(make([]uint64, n))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	nested := func(depth int) []byte {
		b := []byte{0x00}
		for range depth {
			b = append([]byte{0x81}, b...)
		}
		return b
	}
	mapOf := func(n int) []byte {
		m := make(map[uint64]uint64, n)
		for i := range n {
			m[uint64(i)] = 0
		}
		b, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	def, small := New(), New(MaxArrayElements(16))
	for _, tc := range []struct {
		name      string
		data      []byte
		v         func() any
		def, smal bool // accepted by the default codec, by the small one
	}{
		{"array at the small limit", array(16), func() any { return new([]uint64) }, true, true},
		{"array over the small limit", array(17), func() any { return new([]uint64) }, true, false},
		{"array over the default limit", array(DefaultMaxArrayElements + 1), func() any { return new([]uint64) }, false, false},
		{"map beyond the array limit", mapOf(17), func() any { return new(map[uint64]uint64) }, true, true},
		{"map over the default limit", mapOf(DefaultMaxMapPairs + 1), func() any { return new(map[uint64]uint64) }, false, false},
		{"nesting within the default limit", nested(DefaultMaxNestedLevels - 1), func() any { return new(any) }, true, true},
		{"nesting over the default limit", nested(DefaultMaxNestedLevels + 1), func() any { return new(any) }, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := def.Unmarshal(tc.data, tc.v()); (err == nil) != tc.def {
				t.Errorf("default codec: %v", err)
			}
			if err := small.Unmarshal(tc.data, tc.v()); (err == nil) != tc.smal {
				t.Errorf("small codec: %v", err)
			}
		})
	}
}

func TestPeek(t *testing.T) {
	type version struct {
		V uint64 `cbor:"1,keyasint"`
	}
	c := New()
	var v version
	if err := c.Peek(mustHex(t, "a201020241ff"), &v); err != nil || v.V != 2 {
		t.Fatalf("Peek: %+v, %v", v, err)
	}
	if err := c.Unmarshal(mustHex(t, "a201020241ff"), &v); err == nil {
		t.Fatal("Unmarshal accepted an unknown field")
	}
	for _, in := range []string{"a2010101", "a201020241ff00", "bf0102ff"} {
		if err := c.Peek(mustHex(t, in), &v); err == nil {
			t.Errorf("Peek accepted %s", in)
		}
	}
}

func TestNewPanicsOnBadLimit(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted MaxArrayElements(1)")
		}
	}()
	New(MaxArrayElements(1))
}
