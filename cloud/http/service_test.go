package http_test

import (
	"github.com/larder-lockers/larder/cloud"
	lhttp "github.com/larder-lockers/larder/cloud/http"
)

// *cloud.Service is what cloudd passes as Options.Service: it must keep satisfying the
// interfaces the handlers are written against.
var _ lhttp.Service = (*cloud.Service)(nil)
