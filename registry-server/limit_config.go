package registryserver

import "github.com/ferrysync/ferry/registry-server/limit"

// limitFileConfig is the limits' part of the JSON config file.
type limitFileConfig struct {
	MaxConnsPerIP *int     `json:"maxConnsPerIP"`
	RequestRate   *float64 `json:"requestRate"`
	RequestBurst  *int     `json:"requestBurst"`
}

func (f limitFileConfig) apply(c *limit.Config) {
	if f.MaxConnsPerIP != nil {
		c.MaxConnsPerIP = *f.MaxConnsPerIP
	}
	if f.RequestRate != nil {
		c.RequestRate = *f.RequestRate
	}
	if f.RequestBurst != nil {
		c.RequestBurst = *f.RequestBurst
	}
}
