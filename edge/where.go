package edge

import "fmt"

// Door is a door as the kiosk shows it to a person: its number, where it is in words
// (English and Chinese), whether it is open and whether the infrared sees it empty.
type Door struct {
	Number  int    `json:"number"`
	Row     int    `json:"row"`
	Column  int    `json:"column"`
	WhereEN string `json:"where_en"`
	WhereZH string `json:"where_zh"`
	State   string `json:"state"` // open, closed or jammed
	Empty   bool   `json:"empty"`
}

// layout knows the bank's rows and columns, to say "bottom row, left" rather than numbers.
type layout struct {
	specs          map[int]CompartmentSpec
	maxRow, maxCol int
}

func newLayout(specs []CompartmentSpec) layout {
	l := layout{specs: make(map[int]CompartmentSpec, len(specs))}
	for _, s := range specs {
		l.specs[s.Number] = s
		l.maxRow = max(l.maxRow, s.Row)
		l.maxCol = max(l.maxCol, s.Column)
	}
	return l
}

// where describes compartment n in words. Row 1 is the bottom row; column 1 the left.
func (l layout) where(n int) (en, zh string) {
	s := l.specs[n]
	en, zh = fmt.Sprintf("door %d", n), fmt.Sprintf("%d号门", n)
	switch {
	case s.Row <= 0:
	case s.Row == 1:
		en, zh = en+", bottom row", zh+"，最下排"
	case s.Row == l.maxRow:
		en, zh = en+", top row", zh+"，最上排"
	default:
		en, zh = en+fmt.Sprintf(", row %d from the bottom", s.Row), zh+fmt.Sprintf("，从下往上第%d排", s.Row)
	}
	switch {
	case s.Column <= 0 || l.maxCol <= 1:
	case s.Column == 1:
		en, zh = en+", left", zh+"，左边"
	case s.Column == l.maxCol:
		en, zh = en+", right", zh+"，右边"
	case l.maxCol == 3:
		en, zh = en+", middle", zh+"，中间"
	default:
		en, zh = en+fmt.Sprintf(", column %d from the left", s.Column), zh+fmt.Sprintf("，从左数第%d列", s.Column)
	}
	return en, zh
}
