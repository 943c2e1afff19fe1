package marketplace

import (
	"context"
	"math"
	"strconv"
	"time"
)

// VMSize is what virtual machines take of their host: vCPUs and memory.
type VMSize struct {
	VCPUs     int   `json:"vcpus"`
	MemoryMiB int64 `json:"memory_mib"`
}

// Add is the size of both.
func (s VMSize) Add(o VMSize) VMSize {
	return VMSize{VCPUs: s.VCPUs + o.VCPUs, MemoryMiB: s.MemoryMiB + o.MemoryMiB}
}

// Max is, per resource, the larger of both: what a guest takes while it may run at either size (an
// upgrade under way, which returns to the previous size when it fails).
func (s VMSize) Max(o VMSize) VMSize {
	return VMSize{VCPUs: max(s.VCPUs, o.VCPUs), MemoryMiB: max(s.MemoryMiB, o.MemoryMiB)}
}

// Fits reports whether s is no larger than o in either resource.
func (s VMSize) Fits(o VMSize) bool { return s.VCPUs <= o.VCPUs && s.MemoryMiB <= o.MemoryMiB }

// Size is the vCPUs and memory of a vm application.
func (s *DeploymentSpec) Size() (VMSize, error) {
	cpus, err := s.VCPUs()
	if err != nil {
		return VMSize{}, err
	}
	mib, err := s.MemoryMiB()
	if err != nil {
		return VMSize{}, err
	}
	return VMSize{VCPUs: cpus, MemoryMiB: mib}, nil
}

// VMHost is the capacity of the VM host as a worker saw it (libvirt's node info) and the overcommit
// ratios it was configured with (VM_CPU_OVERCOMMIT, VM_MEMORY_OVERCOMMIT).
type VMHost struct {
	Name             string
	CPUs             int
	MemoryMiB        int64
	CPUOvercommit    float64
	MemoryOvercommit float64
	RefreshedAt      time.Time
}

// Capacity is what the guests of the host may take in all: its CPUs and memory times their ratios.
func (h VMHost) Capacity() VMSize {
	// A hair of tolerance so that 2.5 CPUs × 0.8 is 2, not 1.999… rounded down to 1.
	return VMSize{VCPUs: int(math.Floor(float64(h.CPUs)*h.CPUOvercommit + 1e-9)),
		MemoryMiB: int64(math.Floor(float64(h.MemoryMiB)*h.MemoryOvercommit + 1e-9))}
}

// Admit refuses (ECONFLICT) a guest of size need on a host whose guests already take used, when together
// they would take more than its capacity; the message names what is short.
func (h VMHost) Admit(used, need VMSize) error {
	room := h.Capacity()
	if used.Add(need).Fits(room) {
		return nil
	}
	free := VMSize{VCPUs: max(room.VCPUs-used.VCPUs, 0), MemoryMiB: max(room.MemoryMiB-used.MemoryMiB, 0)}
	return Errorf(ECONFLICT, "the VM host is full: this virtual machine needs %s and %d MiB; the VM host has %s and %d MiB free "+
		"(its guests may take %s and %d MiB in all: %d CPUs × %g (VM_CPU_OVERCOMMIT) and %d MiB × %g (VM_MEMORY_OVERCOMMIT)); "+
		"delete a virtual machine, or ask the operator for more room",
		vcpus(need.VCPUs), need.MemoryMiB, vcpus(free.VCPUs), free.MemoryMiB, vcpus(room.VCPUs), room.MemoryMiB,
		h.CPUs, h.CPUOvercommit, h.MemoryMiB, h.MemoryOvercommit)
}

func vcpus(n int) string {
	if n == 1 {
		return "1 vCPU"
	}
	return strconv.Itoa(n) + " vCPUs"
}

// VMHostStore keeps the VM host's capacity, which a worker (the only role connected to the host) records
// and the API's install and upgrade requests admit against.
type VMHostStore interface {
	RecordVMHost(ctx context.Context, h VMHost) error
}
