package vici

import (
	"context"
	"fmt"
	"strconv"

	govici "github.com/strongswan/govici/vici"
)

// TerminateSA ends one IKE_SA by its unique id. It sends the peer a DELETE
// but does not wait for the answer (force, no timeout), so a removed user or
// tunnel is cut off at once even when the peer no longer responds. It
// reports false when the SA was gone already.
func TerminateSA(ctx context.Context, s Session, uniqueID uint32) (bool, error) {
	return terminate(ctx, s, uniqueID, true)
}

// DeleteSA ends one IKE_SA by its unique id the way a peer would: charon
// sends a DELETE and retransmits it until the peer answers or charon gives
// up, so a device that is still there learns that its session ended. It
// does not wait for that (timeout -1). It reports false when the SA was
// gone already.
func DeleteSA(ctx context.Context, s Session, uniqueID uint32) (bool, error) {
	return terminate(ctx, s, uniqueID, false)
}

func terminate(ctx context.Context, s Session, uniqueID uint32, force bool) (bool, error) {
	req := govici.NewMessage()
	_ = req.Set("ike-id", strconv.FormatUint(uint64(uniqueID), 10))
	if force {
		_ = req.Set("force", "yes")
	}
	_ = req.Set("timeout", "-1")
	resp, err := s.Call(ctx, "terminate", req)
	if resp != nil && str(resp, "matches") == "0" {
		return false, nil
	}
	if err == nil && resp != nil && str(resp, "success") == "no" {
		err = fmt.Errorf("charon: %s", str(resp, "errmsg"))
	}
	return err == nil, err
}

// ReloadSettings has charon re-read strongswan.conf and its includes (the
// eap-radius plugin rebuilds its server list from them).
func ReloadSettings(ctx context.Context, s Session) error {
	return call(ctx, s, "reload-settings", govici.NewMessage(), "reload-settings")
}

// SharedKeyIDs lists the ids of the shared secrets charon holds.
func SharedKeyIDs(ctx context.Context, s Session) ([]string, error) {
	resp, err := s.Call(ctx, "get-shared", govici.NewMessage())
	if err != nil {
		return nil, err
	}
	keys, _ := resp.Get("keys").([]string)
	return keys, nil
}
