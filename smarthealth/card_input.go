package smarthealth

// Reading cards from what a user has: a .smart-health-card file, the
// numeric QR payload (one chunk or several), or a bare JWS.

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// Card input forms, as DetectCard names them.
const (
	FormFile = "file" // {"verifiableCredential": [JWS, ...]}
	FormQR   = "qr"   // shc:/DIGITS or shc:/i/n/DIGITS lines
	FormJWS  = "jws"  // a bare compact JWS
)

// jwsSniffCut is the prefix length from which DetectCard assumes its
// input was cut (vault sniffs 64 KiB).
const jwsSniffCut = 60 << 10

const jwsAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."

var jwsRE = regexp.MustCompile(`^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)

// DetectCard says which card form data (or a prefix of it) looks like, or
// "" when it is none. It is a cheap guess from the first bytes; ParseCards
// decides.
func DetectCard(prefix []byte) string {
	p := bytes.TrimLeft(bytes.TrimPrefix(prefix, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case bytes.HasPrefix(p, []byte("shc:/")):
		return FormQR
	case len(p) > 0 && p[0] == '{':
		head := p[:min(len(p), 256)]
		if bytes.Contains(head, []byte(`"verifiableCredential"`)) {
			return FormFile
		}
	case bytes.HasPrefix(p, []byte("eyJ")):
		// The first line must be a compact JWS; a prefix cut inside a very
		// long one is judged on what it shows.
		line, _, complete := bytes.Cut(p, []byte("\n"))
		line = bytes.TrimRight(line, " \t\r")
		if complete || len(p) < jwsSniffCut {
			if jwsRE.Match(line) {
				return FormJWS
			}
		} else if len(bytes.Trim(line, jwsAlphabet)) == 0 && bytes.Contains(line, []byte(".")) {
			return FormJWS
		}
	}
	return ""
}

// ParseCards returns the compact JWS of every card in data: a card file
// (at most MaxCards credentials), QR payloads (chunks of one card in any
// order, one per line), or one bare JWS.
func ParseCards(data []byte) ([]string, error) {
	if len(data) > MaxCardInput {
		return nil, malformed("the input is larger than %d bytes", MaxCardInput)
	}
	switch DetectCard(data) {
	case FormFile:
		var f struct {
			VC []string `json:"verifiableCredential"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, malformed("the card file is not valid JSON with a verifiableCredential array")
		}
		if len(f.VC) == 0 {
			return nil, malformed("the card file holds no credential")
		}
		if len(f.VC) > MaxCards {
			return nil, malformed("the card file holds %d credentials, more than %d", len(f.VC), MaxCards)
		}
		return f.VC, nil
	case FormQR:
		jws, err := DecodeQR(strings.Fields(string(data)))
		if err != nil {
			return nil, err
		}
		return []string{jws}, nil
	case FormJWS:
		s := strings.TrimSpace(string(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
		if !jwsRE.MatchString(s) {
			return nil, malformed("not a compact JWS")
		}
		return []string{s}, nil
	}
	return nil, malformed("neither a .smart-health-card file, a shc:/ QR payload nor a JWS")
}

// DecodeQR turns the numeric QR payloads of one card back into its JWS:
// one "shc:/DIGITS", or every chunk "shc:/i/n/DIGITS" (i from 1 to n, in
// any order, each once). Every two digits are one character: its code
// minus 45.
func DecodeQR(chunks []string) (string, error) {
	if len(chunks) == 0 {
		return "", malformed("no shc:/ payload")
	}
	if len(chunks) > MaxChunks {
		return "", malformed("%d QR chunks, more than %d", len(chunks), MaxChunks)
	}
	parts := make([]string, len(chunks))
	for _, c := range chunks {
		rest, ok := strings.CutPrefix(strings.TrimSpace(c), "shc:/")
		if !ok {
			return "", malformed("a QR payload does not start with shc:/")
		}
		idx, total := 1, 1
		if f := strings.Split(rest, "/"); len(f) == 3 {
			var err1, err2 error
			idx, err1 = strconv.Atoi(f[0])
			total, err2 = strconv.Atoi(f[1])
			if err1 != nil || err2 != nil || total < 2 || idx < 1 || idx > total {
				return "", malformed("a QR chunk has a bad index")
			}
			rest = f[2]
		} else if len(f) != 1 {
			return "", malformed("a QR payload is shc:/DIGITS or shc:/i/n/DIGITS")
		}
		if total != len(chunks) {
			return "", malformed("QR chunk %d of %d, but %d chunks were given", idx, total, len(chunks))
		}
		if parts[idx-1] != "" {
			return "", malformed("QR chunk %d given twice", idx)
		}
		s, err := decodeDigits(rest)
		if err != nil {
			return "", err
		}
		parts[idx-1] = s
	}
	return strings.Join(parts, ""), nil
}

func decodeDigits(d string) (string, error) {
	if len(d) == 0 || len(d)%2 != 0 {
		return "", malformed("a QR payload has an odd or empty digit string")
	}
	b := make([]byte, len(d)/2)
	for i := range b {
		hi, lo := d[2*i], d[2*i+1]
		if hi < '0' || hi > '9' || lo < '0' || lo > '9' {
			return "", malformed("a QR payload holds a non-digit")
		}
		v := int(hi-'0')*10 + int(lo-'0')
		if v > 'z'-45 {
			return "", malformed("a QR payload holds an out-of-range pair")
		}
		b[i] = byte(v + 45)
	}
	return string(b), nil
}

// EncodeQR is the inverse of DecodeQR for one chunk: "shc:/" and two
// digits per character (tests and the fuzzer use it).
func EncodeQR(jws string) string {
	var b strings.Builder
	b.WriteString("shc:/")
	for i := 0; i < len(jws); i++ {
		v := int(jws[i]) - 45
		b.WriteByte(byte('0' + v/10))
		b.WriteByte(byte('0' + v%10))
	}
	return b.String()
}
