package vault

import "fmt"

// ShareRecord reads the record ID from a share's header (its first
// ShareHeaderSize bytes). A network store uses it to tag and place a share
// before it has seen the rest; the manifest still decides whether the
// share is any good.
func ShareRecord(hdr []byte) (RecordID, error) {
	var rid RecordID
	if len(hdr) < ShareHeaderSize || string(hdr[0:4]) != shareMagic || hdr[4] != shareVersion {
		return rid, fmt.Errorf("vault: not a medwallet share header")
	}
	copy(rid[:], hdr[12:28])
	return rid, nil
}
