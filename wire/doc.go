// Package wire is the Nacos 2.x gRPC protocol as Ferry speaks it: the
// Payload proto, the two unpackaged gRPC services, the JSON request and
// response types of the naming and internal modules, Nacos' error codes, a
// type-name registry, and Ferry's merged-beat extension.
//
// A message travels as a Payload whose Metadata.type is the Java simple class
// name ("InstanceRequest") and whose body is a google.protobuf.Any with an
// empty type_url and the UTF-8 JSON of the object in value. Unknown JSON
// fields are ignored (Jackson FAIL_ON_UNKNOWN_PROPERTIES=false); null fields
// are omitted where Nacos' Jackson (Include.NON_NULL) omits them.
//
// # Ferry's extension: merged beats
//
// FerryBatchBeatRequest carries beats of many beat-kept instances in one
// request (each with the full instance so that an unknown one is registered);
// FerryBatchBeatResponse answers per item, in order: "ok", "unknown" (the
// server did not know it and register-if-unknown was not asked, or it could
// not register it), "redirect" (another node is responsible: Redirect is its
// main HTTP "host:port"; the gRPC port is +1000) or "invalid".
//
// FerryBatchDeregisterRequest removes many beat-kept instances at once, in
// the compact group form (one service, many "ip:port" addresses).
// FerryBatchDeregisterResponse lists only the addresses that are not "ok",
// by index over all group addresses: "redirect" or "invalid". An address
// the server does not know is "ok", as Nacos answers a deregister of an
// unknown instance with success. It belongs to the same extension and the
// same capability flag as merged beats: a server offering ferryBatchBeat
// serves both.
//
// How a client tells Ferry from a real Nacos: Ferry's ServerCheckResponse
// carries "ferryBatchBeat":true, a field Nacos SDKs ignore. A real Nacos
// answers an unknown request type (so FerryBatchBeatRequest) with an
// ErrorResponse of errorCode 302 (NO_HANDLER, GrpcRequestAcceptor), so a
// client that skipped the check still learns it on its first batch beat and
// must fall back to per-instance registration (and to one HTTP DELETE per
// instance when FerryBatchDeregisterRequest is answered 302).
//
// This package imports nothing else of Ferry's.
package wire
