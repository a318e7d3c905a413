package vici

import (
	"context"
	"fmt"
	"strconv"

	govici "github.com/strongswan/govici/vici"
)

// Redirect asks the peer of the IKE_SA with that unique id to connect to
// gateway (an address or name) instead: an IKEv2 REDIRECT notify (RFC
// 5685) in an INFORMATIONAL exchange. It works only for IKE_SAs the peer
// initiated and whose peer announced REDIRECT_SUPPORTED; a strongSwan
// client does, and follows it (charon.follow_redirects, on by default)
// by tearing the IKE_SA down and connecting to gateway at once. It reports
// false when no such IKE_SA exists.
func Redirect(ctx context.Context, s Session, uniqueID uint32, gateway string) (bool, error) {
	req := govici.NewMessage()
	_ = req.Set("ike-id", strconv.FormatUint(uint64(uniqueID), 10))
	_ = req.Set("gateway", gateway)
	resp, err := s.Call(ctx, "redirect", req)
	if resp != nil && str(resp, "matches") == "0" {
		return false, nil
	}
	if err == nil && resp != nil && str(resp, "success") == "no" {
		err = fmt.Errorf("charon: %s", str(resp, "errmsg"))
	}
	return err == nil, err
}
