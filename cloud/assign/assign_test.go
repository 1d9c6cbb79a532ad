package assign_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/larder-lockers/larder/cloud/assign"
	"github.com/larder-lockers/larder/protocol"
)

const (
	S, M, L          = protocol.SizeS, protocol.SizeM, protocol.SizeL
	chilled, ambient = protocol.ZoneChilled, protocol.ZoneAmbient
)

func TestPlan(t *testing.T) {
	cands := []assign.Candidate{
		{1, S, chilled, true}, {2, S, chilled, false}, {3, M, chilled, true}, {4, L, chilled, false},
		{5, M, ambient, true}, {6, L, chilled, true},
	}
	cases := []struct {
		name       string
		parcels    []assign.Parcel
		accessible bool
		want       []int // compartments
		err        error
	}{
		{"S prefers a high S", []assign.Parcel{{S, chilled}}, false, []int{2}, nil},
		{"accessible S takes a low S", []assign.Parcel{{S, chilled}}, true, []int{1}, nil},
		{"M best fit is M", []assign.Parcel{{M, chilled}}, false, []int{3}, nil},
		{"two M share an L? no: each M takes the smallest M first", []assign.Parcel{{M, chilled}, {M, chilled}}, false, []int{3, 4}, nil},
		{"L then S share the L? no room: S goes to S", []assign.Parcel{{L, chilled}, {S, chilled}}, false, []int{2, 4}, nil},
		{"M then S share the M", []assign.Parcel{{M, ambient}, {S, ambient}}, false, nil, assign.ErrNoFit},
		{"zones are kept apart", []assign.Parcel{{S, ambient}}, false, []int{5}, nil},
		{"accessible L only low", []assign.Parcel{{L, chilled}}, true, []int{6}, nil},
		{"too much", []assign.Parcel{{L, chilled}, {L, chilled}, {L, chilled}}, false, nil, assign.ErrNoFit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			picks, err := assign.Plan(c.parcels, c.accessible, cands)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			var got []int
			for _, p := range picks {
				got = append(got, p.Compartment)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("compartments (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanPacksOneZone(t *testing.T) {
	cands := []assign.Candidate{{1, L, chilled, true}}
	picks, err := assign.Plan([]assign.Parcel{{M, chilled}, {S, chilled}, {S, chilled}}, false, cands)
	if err != nil || len(picks) != 1 || len(picks[0].Parcels) != 3 {
		t.Fatalf("picks %+v err %v", picks, err)
	}
	if _, err := assign.Plan([]assign.Parcel{{M, chilled}, {M, chilled}, {S, chilled}}, false, cands); !errors.Is(err, assign.ErrNoFit) {
		t.Fatalf("5 units in a 4-unit L: err %v", err)
	}
}
