package configsvc

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// Key names one config. Tenant is the namespace id; "" (and "public") is
// the public namespace.
type Key struct {
	Tenant string
	Group  string
	DataID string
}

func (k Key) String() string { return k.Tenant + "/" + k.Group + "/" + k.DataID }

// Item is one stored config.
type Item struct {
	Key
	Content      string
	MD5          string // lower-case hex MD5 of Content's UTF-8 bytes
	Type         string // text, json, xml, yaml, html, properties
	LastModified int64  // unix ms
	// History holds the previous versions, newest first, at most
	// Config.HistoryMax of them.
	History []Version `json:",omitempty"`
}

// Version is one previous version of a config.
type Version struct {
	Content      string
	MD5          string
	Type         string
	LastModified int64
}

// MD5 is Nacos' md5 of a config's content.
func MD5(content string) string {
	s := md5.Sum([]byte(content))
	return hex.EncodeToString(s[:])
}

// Nacos' limits (ParamUtils; database column widths).
const (
	maxDataIDLen = 255
	maxGroupLen  = 128
	maxTenantLen = 128
)

// DefaultGroup is the group clients use when they give none.
const DefaultGroup = "DEFAULT_GROUP"

// Types Nacos knows; anything else is stored as "text".
var knownTypes = map[string]bool{"text": true, "json": true, "xml": true, "yaml": true, "html": true, "properties": true}

// NormType maps a client's type to a known one.
func NormType(t string) string {
	if knownTypes[t] {
		return t
	}
	return "text"
}

// NormTenant maps the public namespace's names to "".
func NormTenant(t string) string {
	if t == "public" {
		return ""
	}
	return t
}

// validName is Nacos' ParamUtils.isValid: letters, digits and "_-.:".
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '-', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// ValidateKey checks a key as Nacos' ParamUtils.checkParam / checkTenant.
func ValidateKey(k Key) error {
	switch {
	case k.DataID == "":
		return fmt.Errorf("%w: dataId is required", ErrInvalidParam)
	case k.Group == "":
		return fmt.Errorf("%w: group is required", ErrInvalidParam)
	case len(k.DataID) > maxDataIDLen:
		return fmt.Errorf("%w: dataId is longer than %d", ErrInvalidParam, maxDataIDLen)
	case len(k.Group) > maxGroupLen:
		return fmt.Errorf("%w: group is longer than %d", ErrInvalidParam, maxGroupLen)
	case len(k.Tenant) > maxTenantLen:
		return fmt.Errorf("%w: tenant is longer than %d", ErrInvalidParam, maxTenantLen)
	case !validName(k.DataID):
		return fmt.Errorf("%w: dataId %q has characters outside [a-zA-Z0-9-_:.]", ErrInvalidParam, k.DataID)
	case !validName(k.Group):
		return fmt.Errorf("%w: group %q has characters outside [a-zA-Z0-9-_:.]", ErrInvalidParam, k.Group)
	case !validName(k.Tenant):
		return fmt.Errorf("%w: tenant %q has characters outside [a-zA-Z0-9-_:.]", ErrInvalidParam, k.Tenant)
	}
	return nil
}

// validateContent checks a published content: not empty, valid UTF-8,
// within max bytes.
func validateContent(content string, max int) error {
	switch {
	case content == "":
		return fmt.Errorf("%w: content is required", ErrInvalidParam)
	case len(content) > max:
		return fmt.Errorf("%w: %w: content is %d bytes (max %d)", ErrInvalidParam, ErrTooLarge, len(content), max)
	case !utf8.ValidString(content):
		return fmt.Errorf("%w: content is not valid UTF-8", ErrInvalidParam)
	}
	return nil
}
