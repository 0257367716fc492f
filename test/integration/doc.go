// Package integration holds the end-to-end tests of the virtual node on the
// real control plane and the ECI simulator (see test/testenv).
package integration
