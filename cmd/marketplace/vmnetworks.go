package main

import "net/netip"

// VMNetworks are the settings of guests' networks (part of Config).
type VMNetworks struct {
	// VMProjectNetworks is the range each project's network takes a subnet of VMProjectBits from.
	VMProjectNetworks netip.Prefix `env:"VM_PROJECT_NETWORKS" envDefault:"10.214.0.0/16"`
	VMProjectBits     int          `env:"VM_PROJECT_NETWORK_BITS" envDefault:"24"`
	// VMDenyNetworks are more destinations guests may not reach (the VM host's public addresses).
	VMDenyNetworks []netip.Prefix `env:"VM_DENY_NETWORKS" envSeparator:","`
}
