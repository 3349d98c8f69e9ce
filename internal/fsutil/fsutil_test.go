package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// leftovers lists the names in dir other than want, so a test can check
// that no temporary file was left behind.
func leftovers(t *testing.T, dir string, want ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		keep := false
		for _, w := range want {
			keep = keep || e.Name() == w
		}
		if !keep {
			out = append(out, e.Name())
		}
	}
	return out
}

func checkMode(t *testing.T, path string, perm fs.FileMode) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("mode %v, want %v", fi.Mode().Perm(), perm)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	long := strings.Repeat("é", 40) + ".json" // the temporary name is cut on a rune boundary
	tests := []struct {
		name     string
		file     string
		existing []byte // nil: no file before
		data     []byte
		perm     fs.FileMode
	}{
		{"new file", "a.json", nil, []byte(`{"a":1}`), 0o600},
		{"replaces", "a.json", []byte("old content, longer than the new"), []byte("new"), 0o600},
		{"empty data", "a", []byte("old"), []byte{}, 0o600},
		{"other mode", "peers.txt", nil, []byte("x\n"), 0o644},
		{"long unicode name", long, nil, []byte("x"), 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tt.file)
			if tt.existing != nil {
				if err := os.WriteFile(path, tt.existing, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFileAtomic(path, tt.data, tt.perm); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(tt.data) {
				t.Errorf("content %q, want %q", got, tt.data)
			}
			checkMode(t, path, tt.perm)
			if l := leftovers(t, dir, tt.file); len(l) > 0 {
				t.Errorf("left behind: %v", l)
			}
		})
	}
}

func TestWriteFileAtomicErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
	}{
		{"missing directory", filepath.Join(dir, "nope", "a")},
		{"target is a directory", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := WriteFileAtomic(tt.path, []byte("x"), 0o600); err == nil {
				t.Fatal("no error")
			}
			if l := leftovers(t, dir, "nope"); len(l) > 0 {
				t.Errorf("left behind: %v", l)
			}
		})
	}
}

func TestCreateNew(t *testing.T) {
	tests := []struct {
		name string
		// run writes through f and ends it; it returns the error of the end.
		run func(f *NewFile) error
		// appear, when set, creates a file at the final name after
		// CreateNew and before run (another writer racing us).
		appear   bool
		wantErr  error  // nil: no error
		wantData string // content under the final name; "" with wantFile false
		wantFile bool
	}{
		{
			name:     "commit",
			run:      func(f *NewFile) error { f.Write([]byte("hello ")); f.Write([]byte("world")); return f.Commit() },
			wantData: "hello world", wantFile: true,
		},
		{
			name:     "close commits",
			run:      func(f *NewFile) error { f.Write([]byte("x")); return f.Close() },
			wantData: "x", wantFile: true,
		},
		{
			name:     "empty commit",
			run:      func(f *NewFile) error { return f.Commit() },
			wantData: "", wantFile: true,
		},
		{
			name: "abort leaves nothing",
			run:  func(f *NewFile) error { f.Write([]byte("partial")); return f.Abort() },
		},
		{
			name: "abort after commit keeps the file",
			run: func(f *NewFile) error {
				f.Write([]byte("kept"))
				if err := f.Commit(); err != nil {
					return err
				}
				return f.Abort()
			},
			wantData: "kept", wantFile: true,
		},
		{
			name: "write after commit",
			run: func(f *NewFile) error {
				if err := f.Commit(); err != nil {
					return err
				}
				_, err := f.Write([]byte("late"))
				return err
			},
			wantErr: fs.ErrClosed, wantData: "", wantFile: true,
		},
		{
			name:    "a file appeared meanwhile",
			appear:  true,
			run:     func(f *NewFile) error { f.Write([]byte("mine")); return f.Commit() },
			wantErr: fs.ErrExist, wantData: "theirs", wantFile: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.bin")
			f, err := CreateNew(path, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if f.Name() != path {
				t.Errorf("Name() = %q, want %q", f.Name(), path)
			}
			if tt.appear {
				if err := os.WriteFile(path, []byte("theirs"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err = tt.run(f)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("error %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			got, err := os.ReadFile(path)
			switch {
			case !tt.wantFile && !errors.Is(err, fs.ErrNotExist):
				t.Errorf("want no file, read %q (%v)", got, err)
			case tt.wantFile && err != nil:
				t.Errorf("want a file: %v", err)
			case tt.wantFile && string(got) != tt.wantData:
				t.Errorf("content %q, want %q", got, tt.wantData)
			}
			if tt.wantFile && !tt.appear {
				checkMode(t, path, 0o600)
			}
			if l := leftovers(t, dir, "out.bin"); len(l) > 0 {
				t.Errorf("left behind: %v", l)
			}
		})
	}
}

func TestCreateNewRefuses(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr error
	}{
		{"existing file", existing, fs.ErrExist},
		{"dangling symlink", link, fs.ErrExist},
		{"existing directory", dir, fs.ErrExist},
		{"missing directory", filepath.Join(dir, "nope", "a"), fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := CreateNew(tt.path, 0o600)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CreateNew: %v (file %v), want %v", err, f, tt.wantErr)
			}
			if got, _ := os.ReadFile(existing); string(got) != "keep" {
				t.Errorf("existing file changed to %q", got)
			}
			if l := leftovers(t, dir, "existing", "dangling"); len(l) > 0 {
				t.Errorf("left behind: %v", l)
			}
		})
	}
}

func TestWriteFileNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	tests := []struct {
		name    string
		data    string
		wantErr error
		want    string
	}{
		{"creates", "first", nil, "first"},
		{"never overwrites", "second", fs.ErrExist, "first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteFileNew(path, []byte(tt.data), 0o600)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if got, _ := os.ReadFile(path); string(got) != tt.want {
				t.Errorf("content %q, want %q", got, tt.want)
			}
			if l := leftovers(t, dir, "state.json"); len(l) > 0 {
				t.Errorf("left behind: %v", l)
			}
		})
	}
}
