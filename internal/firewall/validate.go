package firewall

import (
	"errors"
	"fmt"
	"net/netip"
)

func validate(cfg Config) error {
	var errs []error
	if cfg.Table == "" {
		errs = append(errs, errors.New("table name is empty"))
	}
	switch cfg.DataPlane {
	case "", DataPlaneKernel, DataPlaneUserspace:
	default:
		errs = append(errs, fmt.Errorf("unknown data plane %q", cfg.DataPlane))
	}
	if len(cfg.TunDevice) > 15 {
		errs = append(errs, fmt.Errorf("TUN device name %q longer than 15 characters", cfg.TunDevice))
	}
	if cfg.MSS != 0 && (cfg.MSS < 536+ipv6MSSDelta || cfg.MSS > 9000) {
		errs = append(errs, fmt.Errorf("MSS %d out of range [%d, 9000]", cfg.MSS, 536+ipv6MSSDelta))
	}
	for _, a := range cfg.GatewayAddresses {
		if !a.IsValid() {
			errs = append(errs, errors.New("invalid gateway address"))
		}
	}
	names := map[string]bool{}
	for _, p := range cfg.Pools {
		if err := validName(p.Name); err != nil {
			errs = append(errs, fmt.Errorf("pool %q: %w", p.Name, err))
		}
		if names["pool/"+p.Name] {
			errs = append(errs, fmt.Errorf("pool %q defined twice", p.Name))
		}
		names["pool/"+p.Name] = true
		if len(p.CIDRs) == 0 {
			errs = append(errs, fmt.Errorf("pool %q has no address range", p.Name))
		}
		errs = append(errs, validPrefixes("pool "+p.Name, p.CIDRs)...)
		errs = append(errs, validPrefixes("pool "+p.Name+" local networks", p.LocalNetworks)...)
		for i, a := range p.Allow {
			if a.Destination != (netip.Prefix{}) {
				errs = append(errs, validPrefixes(fmt.Sprintf("pool %s allow[%d]", p.Name, i), []netip.Prefix{a.Destination})...)
			}
			switch a.Protocol {
			case "", ProtocolAny, ProtocolICMP:
				if len(a.Ports) > 0 {
					errs = append(errs, fmt.Errorf("pool %s allow[%d]: ports need protocol TCP or UDP", p.Name, i))
				}
			case ProtocolTCP, ProtocolUDP:
			default:
				errs = append(errs, fmt.Errorf("pool %s allow[%d]: unknown protocol %q", p.Name, i, a.Protocol))
			}
			for _, pr := range a.Ports {
				if pr.From == 0 || pr.To < pr.From {
					errs = append(errs, fmt.Errorf("pool %s allow[%d]: invalid port range %d-%d", p.Name, i, pr.From, pr.To))
				}
			}
		}
	}
	for _, t := range cfg.Tunnels {
		if err := validName(t.Name); err != nil {
			errs = append(errs, fmt.Errorf("tunnel %q: %w", t.Name, err))
		}
		if names["tunnel/"+t.Name] {
			errs = append(errs, fmt.Errorf("tunnel %q defined twice", t.Name))
		}
		names["tunnel/"+t.Name] = true
		for _, c := range t.Children {
			errs = append(errs, validPrefixes("tunnel "+t.Name+" local networks", c.LocalNetworks)...)
			errs = append(errs, validPrefixes("tunnel "+t.Name+" remote networks", c.RemoteNetworks)...)
		}
	}
	for _, r := range cfg.Refused {
		errs = append(errs, validPrefixes("refused "+r.Owner, []netip.Prefix{r.Prefix})...)
	}
	return errors.Join(errs...)
}

// validName accepts Kubernetes object names (DNS labels and subdomains),
// which also keeps chain names and rule ids free of separators. Their length
// is not limited here: chain and counter names are shortened (PoolChain),
// and rule ids too long for a comment are hashed (Rule.Comment).
func validName(n string) error {
	if n == "" {
		return errors.New("name must not be empty")
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("name contains %q; only a-z, 0-9, '-' and '.' are allowed", r)
		}
	}
	return nil
}

func validPrefixes(what string, ps []netip.Prefix) []error {
	var errs []error
	for _, p := range ps {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("%s: invalid network", what))
		} else if p.Masked() != p {
			errs = append(errs, fmt.Errorf("%s: %s has host bits set (network is %s)", what, p, p.Masked()))
		}
	}
	return errs
}
