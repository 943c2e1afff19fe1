package marketplace

// Page is one slice of a list in its stable order: the items from (Number-1)*Limit, at most Limit of
// them. A zero Limit means the whole list.
type Page struct {
	Number int
	Limit  int
}

// Offset is how many items come before the page.
func (p Page) Offset() int {
	if p.Number < 1 || p.Limit == 0 {
		return 0
	}
	return (p.Number - 1) * p.Limit
}
