// Package dubbogo is an end-to-end test of Ferry's registry with a real
// dubbo-go v3.3.2 provider and consumer using it as a Nacos server with
// default settings (registry, metadata report, service-name mapping through
// the config service). dubbo-go is a large module: it lives in this
// separate test module so the main module's dependencies stay lean. Run it
// with `cd conformance/dubbogo && go test ./...` (without -race: the
// detector reports races inside nacos-sdk-go v2.2.5 and dubbo-getty).
package dubbogo
