package consent

import (
	"testing"
	"time"
)

type decideCase struct {
	name       string
	req        *Request
	reason     Reason
	grant      Hash
	credential Hash
	until      int64
}

func breakGlassRequest(t *testing.T, s Signer, owner ID, record string, bg Hash) *Request {
	t.Helper()
	r := newRequest(t, s, owner, record, "patient/*.rs", PurposeEmergency, t0)
	r.BreakGlass = bg
	r, err := SignRequest(s, *r)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// roleCases adds credentials, role grants and break-glass entries to w and
// returns the Decide cases that exercise them.
func roleCases(t *testing.T, w *world, alice *KeySigner) []decideCase {
	mercy, stmary := testSigner(t, "mercy"), testSigner(t, "st-mary")
	erRole, physRole := testSigner(t, "mercy er role").ID(), testSigner(t, "mercy physician role").ID()
	frank, gina, hank := testSigner(t, "frank"), testSigner(t, "gina"), testSigner(t, "hank")
	ivan, kate, lena, joe := testSigner(t, "ivan"), testSigner(t, "kate"), testSigner(t, "lena"), testSigner(t, "joe")
	cred := func(issuer Signer, subject ID, role string, roleID ID, nb, exp time.Time) Hash {
		c := &CredentialBody{Subject: subject, Role: role, RoleID: roleID, NotBefore: nb.Unix(), Details: []byte("ciphertext"), RoleRecipient: "age1role"}
		if !exp.IsZero() {
			c.Expires = exp.Unix()
		}
		return w.add(issuer, t0.Add(-3*time.Hour), KindCredential, c).Hash()
	}
	const er = "emergency-physician"
	cFrank := cred(mercy, frank.ID(), er, erRole, t0.Add(-3*time.Hour), time.Time{})
	cred(mercy, gina.ID(), er, erRole, t0.Add(-72*time.Hour), t0.Add(-time.Hour))
	cHank := cred(mercy, hank.ID(), er, erRole, t0.Add(-3*time.Hour), time.Time{})
	cKate := cred(mercy, kate.ID(), er, erRole, t0.Add(-3*time.Hour), time.Time{})
	cLena := cred(mercy, lena.ID(), "physician", physRole, t0.Add(-3*time.Hour), t0.Add(time.Hour))
	cred(stmary, joe.ID(), er, erRole, t0.Add(-3*time.Hour), time.Time{}) // another issuer, same role ID
	w.add(mercy, t0.Add(-2*time.Hour), KindRevoke, &RevokeBody{Grant: cHank})
	w.add(stmary, t0.Add(-2*time.Hour), KindRevoke, &RevokeBody{Grant: cKate}) // not st-mary's to revoke

	box := int64(4 * 3600)
	gEm := w.grant(alice, Grant{Grantee: erRole, Issuer: mercy.ID(), Role: er, Records: []string{"rec-em", "rec-em2"},
		Scopes: []string{"patient/*.rs"}, Purpose: PurposeEmergency, TimeBox: box})
	gPhys := w.grant(alice, Grant{Grantee: physRole, Issuer: mercy.ID(), Role: "physician", Records: []string{"rec-ph"},
		Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
	bgAt := t0.Add(-10 * time.Minute)
	bg := func(s Signer, at time.Time) Hash {
		return w.add(s, at, KindBreakGlass, &BreakGlassBody{Owner: alice.ID(), Grant: gEm, Reason: []byte("ciphertext")}).Hash()
	}
	bgFrank := bg(frank, bgAt)
	bgGina, bgHank, bgIvan := bg(gina, bgAt), bg(hank, bgAt), bg(ivan, bgAt)
	bg(kate, t0.Add(-5*time.Hour))
	bgKate := bg(kate, t0.Add(-time.Minute))
	bgLate := bg(lena, t0.Add(FreshnessWindow+time.Minute))
	lenaBG := breakGlassRequest(t, lena, alice.ID(), "rec-ph", bgLate)
	lenaBG.Purpose = "TREAT"
	lenaBG, _ = SignRequest(lena, *lenaBG)
	noBG := newRequest(t, frank, alice.ID(), "rec-em", "patient/*.rs", PurposeEmergency, t0)
	treat := breakGlassRequest(t, frank, alice.ID(), "rec-em", bgFrank)
	treat.Purpose = "TREAT"
	treat, _ = SignRequest(frank, *treat)
	return []decideCase{
		{"emergency", breakGlassRequest(t, frank, alice.ID(), "rec-em", bgFrank), ReasonEmergency, gEm, cFrank, bgAt.Unix() + box},
		{"emergency second record", breakGlassRequest(t, frank, alice.ID(), "rec-em2", bgFrank), ReasonEmergency, gEm, cFrank, bgAt.Unix() + box},
		{"no-break-glass", noBG, ReasonNoBreakGlass, gEm, Hash{}, 0},
		{"no-break-glass someone else's", breakGlassRequest(t, frank, alice.ID(), "rec-em", bgGina), ReasonNoBreakGlass, gEm, Hash{}, 0},
		{"time-box from the first break-glass", breakGlassRequest(t, kate, alice.ID(), "rec-em", bgKate), ReasonTimeBox, gEm, Hash{}, 0},
		{"credential-expired", breakGlassRequest(t, gina, alice.ID(), "rec-em", bgGina), ReasonCredentialExpired, gEm, Hash{}, 0},
		{"credential-revoked", breakGlassRequest(t, hank, alice.ID(), "rec-em", bgHank), ReasonCredentialRevoked, gEm, Hash{}, 0},
		{"no-credential", breakGlassRequest(t, ivan, alice.ID(), "rec-em", bgIvan), ReasonNoCredential, Hash{}, Hash{}, 0},
		{"no-credential from another issuer", breakGlassRequest(t, joe, alice.ID(), "rec-em", bgIvan), ReasonNoCredential, Hash{}, Hash{}, 0},
		{"record outside the emergency grant", breakGlassRequest(t, frank, alice.ID(), "rec-1", bgFrank), ReasonRecord, Hash{}, Hash{}, 0},
		{"purpose emergency grant does not cover treatment", treat, ReasonPurpose, gEm, Hash{}, 0},
		{"granted by role", newRequest(t, lena, alice.ID(), "rec-ph", "patient/Condition.rs", "TREAT", t0), ReasonGranted, gPhys, cLena, 0},
		{"granted by role ignores a break-glass it does not need", lenaBG, ReasonGranted, gPhys, cLena, 0},
	}
}
