package postgres

// KeptSlot is the slot of catalog_searches a kept answer's key takes, as catalogStatement computes it:
// catalog_kept_slot (migration 00114) must agree.
func KeptSlot(key string) int32 { return int32(keptHash(key) % searchSlots) }
