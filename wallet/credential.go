package wallet

// Credentials: a trusted issuer vouches for a role (IssueCredential,
// Credentials, RevokeCredential), and role grants reach their holders.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
)

// Credentials. An issuer (a hospital, a licensing body: any wallet) signs a
// credential entry saying that a subject holds a role. For each role it
// issues, the issuer keeps a role key in its keyring: an age identity and
// a pseudonymous role ID. A patient's role grant ("any emergency-physician
// credentialed by Mercy") names the role ID and wraps record keys to the
// role key; each credential hands the role key to its subject, encrypted,
// so a clinician credentialed after the grant can still open it. Peers
// check the credential itself (issuer, validity, revocation) before
// releasing any share.

const rolePrefix = "role/"

// roleSecret is the keyring item of one role key.
type roleSecret struct {
	Version     int    `json:"version"`
	RoleID      string `json:"role_id"`
	AgeIdentity string `json:"age_identity"`
}

// credentialDetails is what a credential carries encrypted to its subject
// and issuer.
type credentialDetails struct {
	Version int    `json:"version"`
	Org     string `json:"org,omitempty"`
	Licence string `json:"licence,omitempty"`
	RoleKey string `json:"role_key"`
}

// CredentialOptions describe a new credential.
type CredentialOptions struct {
	// To is the subject: a contact name or an ID with an identity entry.
	To string
	// Role is the role vouched for, e.g. physician, nurse,
	// emergency-physician, insurer-agent.
	Role string
	// Org and Licence are shown to the subject and the issuer only.
	Org, Licence string
	// Expires is "" (never) or as for grants ("1y" is not accepted; use
	// "52w" or a date).
	Expires string
}

// Credential statuses (as for grants).
const (
	CredentialActive      = GrantActive
	CredentialRevoked     = GrantRevoked
	CredentialExpired     = GrantExpired
	CredentialNotYetValid = GrantNotYetValid
)

// CredentialInfo describes a credential the wallet issued or holds.
type CredentialInfo struct {
	ID          consent.Hash
	Issuer      consent.ID
	IssuerName  string
	Subject     consent.ID
	SubjectName string
	Role        string
	RoleID      consent.ID
	Org         string
	Licence     string
	NotBefore   time.Time
	Expires     time.Time // zero: no expiry
	Status      string
	Issued      bool // this wallet issued it
	Held        bool // this wallet is its subject
}

// roleKey returns this wallet's key for role, creating it on first use.
func (w *Wallet) roleKey(role string) (consent.ID, *age.X25519Identity, error) {
	w.mu.Lock()
	ks, err := w.keystore()
	w.mu.Unlock()
	if err != nil {
		return "", nil, err
	}
	name := rolePrefix + string(w.ID()) + "/" + role
	if b, err := ks.Get(name); err == nil {
		var s roleSecret
		if json.Unmarshal(b, &s) != nil || s.Version != 1 {
			return "", nil, fmt.Errorf("the keyring item of role %s is damaged: %w", role, ErrInvalid)
		}
		id, err := consent.ParseID(s.RoleID)
		if err != nil {
			return "", nil, fmt.Errorf("the keyring item of role %s is damaged: %w", role, ErrInvalid)
		}
		a, err := age.ParseX25519Identity(s.AgeIdentity)
		if err != nil {
			return "", nil, fmt.Errorf("the keyring item of role %s is damaged: %w", role, ErrInvalid)
		}
		return id, a, nil
	}
	// The role ID is the ID of a fresh Ed25519 key whose private half is
	// dropped: a name for the role that nobody can sign as.
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, err
	}
	id, err := consent.IDFromPublicKey(pub)
	if err != nil {
		return "", nil, err
	}
	a, err := age.GenerateX25519Identity()
	if err != nil {
		return "", nil, err
	}
	b, _ := json.Marshal(roleSecret{Version: 1, RoleID: string(id), AgeIdentity: a.String()})
	if err := ks.Set(name, b); err != nil {
		return "", nil, fmt.Errorf("storing the role key in the keyring: %w", err)
	}
	return id, a, nil
}

// IssueCredential signs a credential for a subject and, with a network,
// publishes it.
func (w *Wallet) IssueCredential(ctx context.Context, o CredentialOptions) (CredentialInfo, error) {
	defer w.holdLedger()() // its steps share one open ledger
	if err := consent.ValidateCredentialRole(o.Role); err != nil {
		return CredentialInfo{}, &InputError{Field: FieldRole, Problem: Malformed, Value: o.Role, Err: err}
	}
	var err error
	if o.Org, err = checkText("the organisation", o.Org, 200, false); err != nil {
		return CredentialInfo{}, err
	}
	if o.Licence, err = checkText("the licence", o.Licence, 200, false); err != nil {
		return CredentialInfo{}, err
	}
	now := w.Now()
	expires, err := ParseExpiry(o.Expires, now)
	if err != nil {
		return CredentialInfo{}, err
	}
	if err := w.catchUp(ctx); err != nil {
		return CredentialInfo{}, err
	}
	subject, recipient, err := w.resolveGrantee(o.To)
	if err != nil {
		return CredentialInfo{}, err
	}
	id, err := w.Identity()
	if err != nil {
		return CredentialInfo{}, err
	}
	roleID, roleKey, err := w.roleKey(o.Role)
	if err != nil {
		return CredentialInfo{}, err
	}
	plain, _ := json.Marshal(credentialDetails{Version: 1, Org: o.Org, Licence: o.Licence, RoleKey: roleKey.String()})
	details, err := encryptTo(plain, recipient, id.Age.Recipient())
	if err != nil {
		return CredentialInfo{}, err
	}
	body := &consent.CredentialBody{Subject: subject, Role: o.Role, RoleID: roleID, NotBefore: now.Unix(),
		Details: details, RoleRecipient: roleKey.Recipient().String()}
	if !expires.IsZero() {
		body.Expires = expires.Unix()
	}
	if err := body.Validate(); err != nil {
		return CredentialInfo{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var out CredentialInfo
	if err := w.appendAndPublish(ctx, consent.KindCredential, body, func(v *consent.View, e *consent.Entry) {
		c, _ := v.Credential(e.Hash())
		out = w.credentialInfo(v, c, id.Opener(), now)
	}); err != nil {
		return out, fmt.Errorf("credential %s: %w", out.ID.String()[:12], err)
	}
	return out, nil
}

// appendEntry signs one entry on the wallet's feed and calls fn with the
// view that holds it.
func (w *Wallet) appendEntry(kind consent.Kind, body any, fn func(*consent.View, *consent.Entry)) (*consent.Entry, error) {
	l, s, err := w.openLedger(true)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	e, err := l.Append(s, w.Now(), kind, body)
	if err != nil {
		return nil, fmt.Errorf("writing the %s entry: %w", kind, err)
	}
	if fn != nil {
		l.View(func(v *consent.View) { fn(v, e) })
	}
	return e, nil
}

// appendAndPublish is appendEntry, then, with a network, a push of the
// feed. An error after the entry is signed says it is not yet on the
// network.
func (w *Wallet) appendAndPublish(ctx context.Context, kind consent.Kind, body any, fn func(*consent.View, *consent.Entry)) error {
	if _, err := w.appendEntry(kind, body, fn); err != nil {
		return err
	}
	if !w.HasNetwork() {
		return nil
	}
	if err := w.publishFeed(ctx); err != nil {
		return fmt.Errorf("signed but not yet on the network: %w", err)
	}
	return nil
}

// encryptTo age-encrypts plain to the recipients.
func encryptTo(plain []byte, to ...age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	wc, err := age.Encrypt(&buf, to...)
	if err != nil {
		return nil, err
	}
	if _, err := wc.Write(plain); err != nil {
		return nil, err
	}
	if err := wc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decryptWith opens age ciphertext of at most limit bytes of plaintext.
func decryptWith(ct []byte, me age.Identity, limit int64) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(ct), me)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, limit))
}

// openDetails decrypts a credential's details, and checks that the role
// key it hands over is the one the credential names.
func openDetails(c *consent.CredentialInfo, me age.Identity) (*credentialDetails, *age.X25519Identity, error) {
	b, err := decryptWith(c.Details, me, consent.MaxDetailsSize)
	if err != nil {
		return nil, nil, err
	}
	var d credentialDetails
	if err := json.Unmarshal(b, &d); err != nil || d.Version != 1 {
		return nil, nil, fmt.Errorf("credential details are malformed: %w", ErrVerify)
	}
	k, err := age.ParseX25519Identity(d.RoleKey)
	if err != nil || k.Recipient().String() != c.RoleRecipient {
		return nil, nil, fmt.Errorf("credential details hold another role key: %w", ErrVerify)
	}
	return &d, k, nil
}

func (w *Wallet) credentialInfo(v *consent.View, c *consent.CredentialInfo, me age.Identity, now time.Time) CredentialInfo {
	ci := CredentialInfo{
		ID: c.ID, Issuer: c.Issuer, IssuerName: w.NameOf(c.Issuer), Subject: c.Subject, SubjectName: w.NameOf(c.Subject),
		Role: c.Role, RoleID: c.RoleID, NotBefore: consent.TimeOf(c.NotBefore),
		Issued: c.Issuer == w.ID(), Held: c.Subject == w.ID(),
	}
	if c.Expires != 0 {
		ci.Expires = consent.TimeOf(c.Expires)
	}
	if me != nil && (ci.Issued || ci.Held) {
		if d, _, err := openDetails(c, me); err == nil {
			ci.Org, ci.Licence = d.Org, d.Licence
		}
	}
	ci.Status = status(v.CredentialRevoked(c.ID), c.NotBefore, c.Expires, now)
	return ci
}

// Credentials lists the credentials this wallet issued or holds, oldest
// first, after pulling the ledger when there is a network.
func (w *Wallet) Credentials(ctx context.Context) ([]CredentialInfo, error) {
	defer w.holdLedger()() // its steps share one open ledger
	if err := w.catchUp(ctx); err != nil {
		return nil, err
	}
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	now := w.Now()
	out := []CredentialInfo{}
	l.View(func(v *consent.View) {
		for _, c := range v.Credentials() {
			if c.Issuer == w.ID() || c.Subject == w.ID() {
				out = append(out, w.credentialInfo(v, c, id.Opener(), now))
			}
		}
	})
	return out, nil
}

// findCredential resolves a credential ID or unique prefix.
func findCredential(v *consent.View, ref string) (*consent.CredentialInfo, error) {
	return findByPrefix(v.Credentials(), func(c *consent.CredentialInfo) consent.Hash { return c.ID }, ref, KindCredential)
}

// RevokeCredential withdraws a credential this wallet issued. Peers stop
// honouring it at once; role keys its subject already holds stay with it,
// but no peer releases a share to it under that credential.
func (w *Wallet) RevokeCredential(ctx context.Context, ref string) (CredentialInfo, error) {
	defer w.holdLedger()() // its steps share one open ledger
	if err := w.catchUp(ctx); err != nil {
		return CredentialInfo{}, err
	}
	id, err := w.Identity()
	if err != nil {
		return CredentialInfo{}, err
	}
	l, _, err := w.openLedger(false)
	if err != nil {
		return CredentialInfo{}, err
	}
	var c *consent.CredentialInfo
	var revoked bool
	l.View(func(v *consent.View) {
		if c, err = findCredential(v, ref); err == nil {
			revoked = v.CredentialRevoked(c.ID)
		}
	})
	l.Close()
	switch {
	case err != nil:
		return CredentialInfo{}, err
	case c.Issuer != w.ID():
		return CredentialInfo{}, fmt.Errorf("credential %s was issued by someone else; only its issuer can revoke it: %w", c.ID.String()[:12], ErrDenied)
	case revoked:
		return CredentialInfo{}, fmt.Errorf("credential %s is already revoked: %w", c.ID.String()[:12], ErrExists)
	}
	var out CredentialInfo
	err = w.appendAndPublish(ctx, consent.KindRevoke, &consent.RevokeBody{Grant: c.ID}, func(v *consent.View, _ *consent.Entry) {
		out = w.credentialInfo(v, c, id.Opener(), w.Now())
	})
	if err != nil {
		return out, fmt.Errorf("the revocation of credential %s: %w", c.ID.String()[:12], err)
	}
	return out, nil
}

// heldRoleKey returns the role key this wallet holds for a role grant
// through one of its credentials (in any state: the peers judge validity),
// with the credential.
func (w *Wallet) heldRoleKey(v *consent.View, g *consent.GrantInfo, me age.Identity) (*age.X25519Identity, *consent.CredentialInfo) {
	for _, c := range v.CredentialsOf(w.ID()) {
		if !c.Reaches(&g.Grant) {
			continue
		}
		if _, k, err := openDetails(c, me); err == nil {
			return k, c
		}
	}
	return nil, nil
}

// roleRecipient finds, for a role grant, the issuer's role ID and role key
// recipient from the issuer's latest credential for that role.
func (w *Wallet) roleRecipient(issuer consent.ID, role string) (consent.ID, *age.X25519Recipient, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return "", nil, err
	}
	defer l.Close()
	var last *consent.CredentialInfo
	l.View(func(v *consent.View) {
		for _, c := range v.Credentials() {
			if c.Issuer == issuer && c.Role == role {
				last = c
			}
		}
	})
	if last == nil {
		who := w.NameOf(issuer)
		if who == "" {
			who = issuer.Short()
		}
		return "", nil, &NotFoundError{Kind: KindCredential, Ref: role, Owner: who}
	}
	r, err := age.ParseX25519Recipient(last.RoleRecipient)
	if err != nil {
		return "", nil, fmt.Errorf("the role key of %s is not an X25519 recipient: %w", role, ErrInvalid)
	}
	return last.RoleID, r, nil
}

// resolveID finds an ID from a contact name or an ID.
func (w *Wallet) resolveID(ref string) (consent.ID, error) {
	c, err := w.Resolve(ref)
	if err == nil {
		return c.Card.ID, nil
	}
	if id, perr := consent.ParseID(ref); perr == nil {
		return id, nil
	}
	return "", err
}
