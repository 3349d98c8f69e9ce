package smarthealth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/smarthealth"
)

// FuzzParseCards feeds anything to the card readers: they return cards or
// ErrMalformed, never panic, and stay within their bounds. The seed
// corpus is in testdata/fuzz/FuzzParseCards.
func FuzzParseCards(f *testing.F) {
	f.Add([]byte(`{"verifiableCredential":["eyJhbGciOiJFUzI1NiJ9.e30.AA"]}`))
	f.Add([]byte("shc:/1/2/5676\nshc:/2/2/5676"))
	f.Add([]byte("eyJhbGciOiJFUzI1NiIsInppcCI6IkRFRiIsImtpZCI6ImsifQ.AAAA.AAAA"))
	f.Fuzz(func(t *testing.T, data []byte) {
		jwss, err := smarthealth.ParseCards(data)
		if err != nil {
			if !errors.Is(err, smarthealth.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(jwss) == 0 || len(jwss) > smarthealth.MaxCards {
			t.Fatalf("%d cards", len(jwss))
		}
		for _, jws := range jwss {
			card, err := smarthealth.ParseJWS(jws)
			if err != nil {
				if !errors.Is(err, smarthealth.ErrMalformed) {
					t.Fatalf("error %v is not ErrMalformed", err)
				}
				continue
			}
			if len(card.Bundle) > smarthealth.MaxPayload {
				t.Fatal("bundle over the bound")
			}
			_, _ = card.Verify(smarthealth.Trust{}, time.Unix(0, 0))
		}
	})
}

// FuzzDecodeQR checks that EncodeQR and DecodeQR are inverse on any
// printable JWS alphabet, and that DecodeQR never panics.
func FuzzDecodeQR(f *testing.F) {
	f.Add("shc:/56762909524320603460292437404460", "eyJhbGciOiJFUzI1NiJ9")
	f.Add("shc:/2/3/3926624456", "a.b.c")
	f.Fuzz(func(t *testing.T, payload, jws string) {
		_, _ = smarthealth.DecodeQR(strings.Split(payload, "\n"))
		for i := 0; i < len(jws); i++ {
			if jws[i] < '-' || jws[i] > 'z' {
				return
			}
		}
		if jws == "" {
			return
		}
		got, err := smarthealth.DecodeQR([]string{smarthealth.EncodeQR(jws)})
		if err != nil || got != jws {
			t.Fatalf("round trip of %q: %q, %v", jws, got, err)
		}
	})
}

// FuzzParseJWKS feeds anything to the JWKS reader.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s","use":"sig","alg":"ES256","crv":"P-256","x":"11XvRWy1I2S0EyJlyf_bWfw_TQ5CJJNLw78bHXNxcgw","y":"eZXwxvO1hvCY0KucrPfKo7yAyMT6Ajc3N7OkAB6VYy8"}]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, _, err := smarthealth.ParseJWKS(data)
		if err != nil {
			if !errors.Is(err, smarthealth.ErrBadJWKS) {
				t.Fatalf("error %v is not ErrBadJWKS", err)
			}
			return
		}
		for _, k := range keys {
			if k.Pub == nil || k.Kid != smarthealth.Thumbprint(k.JWK) {
				t.Fatal("a key without its point or thumbprint")
			}
		}
	})
}
