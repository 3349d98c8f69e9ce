package keystore

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// required lists the backends that must run here: .ci/run sets
// MEDWALLET_REQUIRE_BACKENDS so that a backend CI can run is never skipped.
func required(backend string) bool {
	return slices.Contains(strings.Split(os.Getenv("MEDWALLET_REQUIRE_BACKENDS"), ","), backend)
}

func skipOrFail(t *testing.T, backend, why string) {
	t.Helper()
	if required(backend) {
		t.Fatalf("backend %s is required here (MEDWALLET_REQUIRE_BACKENDS) but cannot run: %s", backend, why)
	}
	t.Skipf("backend %s cannot run on this machine: %s", backend, why)
}

func fixedPass(p string) func(string) (string, error) {
	return func(string) (string, error) { return p, nil }
}

// roundTrip is the conformance check every backend must pass.
func roundTrip(t *testing.T, ks Keystore) {
	t.Helper()
	key := fmt.Sprintf("test/%x", randBytes(8))
	secret := randBytes(64)
	if _, err := ks.Get(key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: got %v, want ErrNotFound", err)
	}
	if err := ks.Set(key, secret); err != nil {
		t.Fatalf("Set: %v", err)
	}
	got, err := ks.Get(key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !bytes.Equal(got, secret) {
		t.Fatalf("Get returned %x, want %x", got, secret)
	}
	secret2 := randBytes(32)
	if err := ks.Set(key, secret2); err != nil {
		t.Fatalf("Set (replace): %v", err)
	}
	if got, _ := ks.Get(key); !bytes.Equal(got, secret2) {
		t.Fatalf("after replace Get returned %x, want %x", got, secret2)
	}
	if err := ks.Remove(key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := ks.Get(key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Remove: got %v, want ErrNotFound", err)
	}
	if err := ks.Remove(key); err != nil {
		t.Fatalf("Remove of a missing key: got %v, want nil", err)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestMemory(t *testing.T) { roundTrip(t, NewMemory()) }

func TestFileBackend(t *testing.T) {
	dir := t.TempDir()
	ks, name, err := Open(Config{Backend: "file", FileDir: dir, Passphrase: fixedPass("correct horse"), ScryptLogN: minLogN})
	if err != nil {
		t.Fatal(err)
	}
	if name != "file" {
		t.Fatalf("backend = %q, want file", name)
	}
	roundTrip(t, ks)

	if err := ks.Set("keep", []byte("precious")); err != nil {
		t.Fatal(err)
	}
	// Nothing under the directory may hold the secret or the passphrase in clear.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(dir + "/" + e.Name())
		if bytes.Contains(b, []byte("precious")) || bytes.Contains(b, []byte("correct horse")) {
			t.Fatalf("%s holds a secret in clear", e.Name())
		}
		if fi, _ := e.Info(); fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group/other access", e.Name(), fi.Mode().Perm())
		}
	}

	// A wrong passphrase must neither read nor overwrite.
	bad, _, err := Open(Config{Backend: "file", FileDir: dir, Passphrase: fixedPass("wrong"), ScryptLogN: minLogN})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Get("keep"); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("Get with wrong passphrase: got %v, want ErrBadPassphrase", err)
	}
	if err := bad.Set("keep", []byte("clobbered")); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("Set with wrong passphrase: got %v, want ErrBadPassphrase", err)
	}
	if err := bad.Set("new", []byte("x")); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("Set of a new key with wrong passphrase: got %v, want ErrBadPassphrase", err)
	}
	good, _, _ := Open(Config{Backend: "file", FileDir: dir, Passphrase: fixedPass("correct horse"), ScryptLogN: minLogN})
	if got, err := good.Get("keep"); err != nil || string(got) != "precious" {
		t.Fatalf("after wrong-passphrase attempts Get = %q, %v; want precious", got, err)
	}
}

func TestFileBackendNoPassphrase(t *testing.T) {
	ks, _, err := Open(Config{Backend: "file", FileDir: t.TempDir(), ScryptLogN: minLogN})
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Set("k", []byte("v")); !errors.Is(err, ErrNoPassphrase) {
		t.Fatalf("Set without passphrase: got %v, want ErrNoPassphrase", err)
	}
}

func TestFileBackendDamagedKDF(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/"+kdfFile, []byte(`{"version":1,"alg":"scrypt","log_n":40,"r":8,"p":1,"salt":"AA=="}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ks, _, err := Open(Config{Backend: "file", FileDir: dir, Passphrase: fixedPass("p"), ScryptLogN: minLogN})
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Set("k", []byte("v")); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("Set with a damaged KDF file: got %v, want a 'damaged' error", err)
	}
}

func TestUnknownBackend(t *testing.T) {
	if _, _, err := Open(Config{Backend: "floppy"}); err == nil || !strings.Contains(err.Error(), "unknown keyring backend") {
		t.Fatalf("got %v", err)
	}
}

func TestKeyctl(t *testing.T) {
	ks, _, err := Open(Config{Backend: "keyctl"})
	if err != nil {
		skipOrFail(t, "keyctl", err.Error())
	}
	roundTrip(t, ks)
}

func TestSecretService(t *testing.T) {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		skipOrFail(t, "secret-service", "no D-Bus session (DBUS_SESSION_BUS_ADDRESS is unset)")
	}
	ks, name, err := Open(Config{Backend: "secret-service"})
	if err != nil {
		skipOrFail(t, "secret-service", err.Error())
	}
	if name != "secret-service" {
		t.Fatalf("backend = %q", name)
	}
	roundTrip(t, ks)
}

func TestPass(t *testing.T) {
	for _, bin := range []string{"pass", "gpg"} {
		if _, err := exec.LookPath(bin); err != nil {
			skipOrFail(t, "pass", bin+" is not installed")
		}
	}
	// gpg-agent's socket path must stay short: use a short temporary dir.
	gnupg, err := os.MkdirTemp("", "mwgpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", gnupg, "--kill", "gpg-agent").Run()
		os.RemoveAll(gnupg)
	})
	store := t.TempDir()
	t.Setenv("GNUPGHOME", gnupg)
	t.Setenv("PASSWORD_STORE_DIR", store)
	run := func(name string, args ...string) {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			skipOrFail(t, "pass", fmt.Sprintf("%s %v: %v: %s", name, args, err, out))
		}
	}
	run("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", "medwallet-test@example.invalid", "default", "default", "never")
	run("pass", "init", "medwallet-test@example.invalid")
	ks, _, err := Open(Config{Backend: "pass", PassDir: store})
	if err != nil {
		skipOrFail(t, "pass", err.Error())
	}
	roundTrip(t, ks)
}

// The scrypt cost comes from Config: a new keyring records it, a keyring
// keeps the cost it was made with, and costs out of range are refused.
func TestFileBackendScryptCost(t *testing.T) {
	dir := t.TempDir()
	ks, _, err := Open(Config{Backend: "file", FileDir: dir, Passphrase: fixedPass("p"), ScryptLogN: minLogN + 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Set("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	again, _, err := Open(Config{Backend: "file", FileDir: dir, Passphrase: fixedPass("p"), ScryptLogN: maxLogN})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := again.Get("k"); err != nil || string(v) != "v" {
		t.Fatalf("reopened with another cost: %q, %v", v, err)
	}
	b, err := os.ReadFile(dir + "/" + kdfFile)
	if err != nil || !bytes.Contains(b, []byte(fmt.Sprintf(`"log_n":%d`, minLogN+1))) {
		t.Fatalf("%s = %s, %v; want log_n %d", kdfFile, b, err, minLogN+1)
	}
	for _, n := range []int{minLogN - 1, maxLogN + 1} {
		if _, _, err := Open(Config{Backend: "file", FileDir: t.TempDir(), ScryptLogN: n}); err == nil {
			t.Errorf("ScryptLogN %d accepted", n)
		}
	}
}

// An error of the passphrase source (an unreadable file, no terminal) is
// reported as it is, never as a wrong passphrase, on a new keyring and on
// an existing one.
func TestFileBackendPassphraseSourceError(t *testing.T) {
	dir := t.TempDir()
	ks, _, err := Open(Config{Backend: "file", FileDir: dir, Passphrase: fixedPass("p"), ScryptLogN: minLogN})
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Set("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	sourceErr := fmt.Errorf("reading the passphrase file: %w", os.ErrNotExist)
	failing := func(string) (string, error) { return "", sourceErr }
	for name, d := range map[string]string{"existing": dir, "new": t.TempDir()} {
		ks, _, err := Open(Config{Backend: "file", FileDir: d, Passphrase: failing, ScryptLogN: minLogN})
		if err != nil {
			t.Fatal(err)
		}
		_, gerr := ks.Get("k")
		serr := ks.Set("k2", []byte("v"))
		for _, err := range []error{gerr, serr} {
			if !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrBadPassphrase) {
				t.Errorf("%s keyring: got %v, want the source's error and not ErrBadPassphrase", name, err)
			}
		}
	}
}
