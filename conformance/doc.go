// Package conformance drives Ferry's registry server with the real Nacos
// Go SDK (github.com/nacos-group/nacos-sdk-go/v2 v2.3.5). It is a separate
// module so that the SDK's dependencies stay out of Ferry's; Ferry's own
// wire types live in proto package ferry.wire, so linking them next to the
// SDK's generated Metadata/Payload does not conflict.
package conformance
