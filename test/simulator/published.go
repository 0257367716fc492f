package simulator

import (
	"net/http"
	"sort"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/published"
)

// maxNamedUnknown bounds how many unpublished parameters one error lists.
const maxNamedUnknown = 5

// checkPublished refuses any request parameter that the published API of
// action does not define (published.Lookup: the vendor's tables, kept in
// test/simulator/published). Indexes match the tables' "N", so
// Container.3.EnvironmentVar.12.Key matches Container.N.EnvironmentVar.N.Key;
// the RPC common parameters (Action, Version, Signature*, ...) are allowed
// for every action.
//
// The real cloud may well ignore a parameter it does not know, silently:
// that is worse than an error, because the user's setting is lost without
// a word and nothing fails. The simulator is stricter than the cloud on
// purpose, so that a client sending an unpublished name fails its tests.
//
// Every action the simulator serves has a published table
// (TestServedActionsArePublished); an action without one would have every
// call refused here, so a new action cannot be served without its table.
func checkPublished(action string, raw map[string]string) *apiError {
	op, ok := published.Lookup(action)
	if !ok {
		return newError(http.StatusBadRequest, CodeUnknownParameter,
			"The simulator has no published parameter table for action %s; add the vendor's table to test/simulator/published.", action)
	}
	var unknown []string
	for k := range raw {
		if published.CommonParams[k] {
			continue
		}
		if _, ok := op.Param(k); !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	more := ""
	if len(unknown) > maxNamedUnknown {
		more = " and more"
		unknown = unknown[:maxNamedUnknown]
	}
	return newError(http.StatusBadRequest, CodeUnknownParameter,
		"The parameter %s%s is not part of the published %s API (ECI %s); the cloud would not apply it. Remove it or use a published parameter.",
		strings.Join(quoteAll(unknown), ", "), more, action, APIVersion)
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = `"` + v + `"`
	}
	return out
}
