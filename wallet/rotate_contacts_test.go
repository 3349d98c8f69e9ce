package wallet

import (
	"context"
	"testing"
)

// Rotation reads the contact book once, however many grants the wallet
// made and re-issues.
func TestRotateReadsContactsOnce(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	alice := cw.alice
	carol, err := Init(memConfig(t), "Carol", "clinician")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AddContact("Carol", carol.Card().String()); err != nil {
		t.Fatal(err)
	}
	grant := func(to, scope string) GrantInfo {
		g, err := alice.Grant(ctx, GrantOptions{To: to, Records: []string{cw.record.ID}, Scopes: []string{scope}, Purpose: "TREAT"})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	bobs := grant("Bob", "patient/*.rs")
	const others = 4
	scopes := []string{"patient/Observation.rs", "patient/Condition.rs", "patient/Immunization.rs", "patient/Procedure.rs"}
	for i := range others {
		grant("Carol", scopes[i])
	}
	if _, err := alice.Revoke(ctx, bobs.ID.String()); err != nil {
		t.Fatal(err)
	}
	reads := countContactReads(t)
	res, err := alice.Rotate(ctx, bobs.ID.String())
	if err != nil || len(res.Replaced) != others {
		t.Fatalf("rotate: %v, %d grants re-issued, want %d", err, len(res.Replaced), others)
	}
	if *reads != 1 {
		t.Fatalf("rotation read the contact book %d times for %d grants, want once", *reads, others+1)
	}
}
