// Package attack holds medwallet's adversarial test suite (issue 11): five
// separate `medwallet peer` processes on loopback, an honest patient and an
// honest clinician driven through the built CLI, and attacker code in the
// test process that speaks the peer protocols with throw-away identities.
//
// There is one test per attack of issue 11's table (attack_test.go). Each
// starts a fresh network, runs its attack for as long as the checks take,
// and asserts what must hold during the attack: the patient's `record get`,
// the clinician's `import` and the patient's `revoke` succeed (with generous
// deadlines, never timing asserts), a revoked grantee is denied by every
// peer (also by one restarted during the attack), every peer's memory and
// disk stay under a stated bound (measured from /proc and the data
// directory, printed with t.Log), and the patient's `log` and `audit
// disclosures` show no forged access.
//
// The attacks are scaled down from the figures so that the whole
// suite runs in a few minutes on two cores; each says how in a comment.
// TestMain builds cmd/medwallet once with `go build`; MEDWALLET_ATTACK_BIN
// runs the suite against a binary built elsewhere instead (a release, or
// another branch's). `go test -short` skips the suite (it starts
// processes); scripts/test.sh runs it, as part of `go test ./...`.
// Peers are killed by t.Cleanup, and by the kernel if the test process
// dies first (Linux). BenchmarkAttacks (scripts/attack-bench.sh) measures
// honest reads and revocation reach with and without each attack.
//
// The package has no code outside its tests, so that it links nothing.
package attack
