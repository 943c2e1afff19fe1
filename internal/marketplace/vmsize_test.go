package marketplace_test

import (
	"testing"

	"github.com/marketplace/marketplace/internal/marketplace"
)

func TestVMSizing(t *testing.T) {
	limits := marketplace.VMLimits{MaxVCPUs: 8, MaxMemoryMiB: 16 << 10}
	for _, tc := range []struct {
		cpu, memory string
		vcpus       int
		mib         int64
		ok          bool
	}{
		{"2", "512Mi", 2, 512, true},
		{"2 vCPUs", "4GB RAM", 2, 4096, true},
		{"1 vCPU", "4Gi", 1, 4096, true},
		{"8", "1G", 8, 954, true},
		{"4", "16Gi", 4, 16384, true},
		{"lots", "512Mi", 0, 0, false},
		{"0", "512Mi", 0, 0, false},
		{"-1", "512Mi", 0, 0, false},
		{"9", "512Mi", 0, 0, false},
		{"2", "lots", 0, 0, false},
		{"2", "0Mi", 0, 0, false},
		{"2", "-512Mi", 0, 0, false},
		{"2", "4", 0, 0, false},
		{"2", "17Gi", 0, 0, false},
	} {
		spec := marketplace.DeploymentSpec{Type: marketplace.TypeVM, Image: "test-guest.qcow2", CPU: tc.cpu, Memory: tc.memory}
		err := spec.Validate()
		if err == nil {
			err = spec.CheckVMLimits(limits)
		}
		if (err == nil) != tc.ok {
			t.Errorf("cpu %q memory %q: err %v, want ok=%v", tc.cpu, tc.memory, err, tc.ok)
			continue
		}
		if err != nil {
			if marketplace.ErrorCode(err) != marketplace.EINVALID {
				t.Errorf("cpu %q memory %q: code %s, want invalid", tc.cpu, tc.memory, marketplace.ErrorCode(err))
			}
			continue
		}
		if n, _ := spec.VCPUs(); n != tc.vcpus {
			t.Errorf("cpu %q: %d vCPUs, want %d", tc.cpu, n, tc.vcpus)
		}
		if m, _ := spec.MemoryMiB(); m != tc.mib {
			t.Errorf("memory %q: %d MiB, want %d", tc.memory, m, tc.mib)
		}
	}
}

func TestVMImage(t *testing.T) {
	for _, tc := range []struct {
		image string
		ok    bool
	}{
		{"test-guest.qcow2", true}, {"debian/12.qcow2", true}, {"https://example.com/a.qcow2", true},
		{"../etc/shadow", false}, {"a/../../b", false}, {"/etc/passwd", false}, {"", false},
		{"ftp://example.com/a.qcow2", false}, {"file:///etc/passwd", false}, {"./a.qcow2", false},
	} {
		spec := marketplace.DeploymentSpec{Type: marketplace.TypeVM, Image: tc.image, CPU: "1", Memory: "128Mi"}
		if err := spec.Validate(); (err == nil) != tc.ok {
			t.Errorf("image %q: err %v, want ok=%v", tc.image, err, tc.ok)
		}
	}
}
