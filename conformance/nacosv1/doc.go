// Package nacosv1 drives Ferry's registry with the real Nacos Go SDK
// v1.1.4 (github.com/nacos-group/nacos-sdk-go, the 1.x client: HTTP
// registration, beats and polls, pushes over UDP), in a module of its own
// so neither the main module nor conformance/ (SDK v2) depends on it.
package nacosv1
