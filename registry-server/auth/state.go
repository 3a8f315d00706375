package auth

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The RBAC model is Nacos' default auth plugin (NacosRoleServiceImpl,
// Nacos 2.5.1): users hold roles; a role holds permissions, each a
// resource pattern and an action ("r", "w" or "rw"); ROLE_ADMIN is the
// global admin, who alone may use the console resources (user, role and
// permission management) and Ferry's operator endpoints.

// GlobalAdminRole is Nacos' AuthConstants.GLOBAL_ADMIN_ROLE.
const GlobalAdminRole = "ROLE_ADMIN"

// DefaultAdmin is the admin user a node creates at first start with auth on
// (Nacos' AuthConstants.DEFAULT_USER).
const DefaultAdmin = "nacos"

// Action is what a request does to a resource.
type Action string

// Nacos' ActionTypes.
const (
	Read  Action = "r"
	Write Action = "w"
)

// Resource types, as Nacos' SignType lower-cased in permission resources.
const (
	TypeNaming = "naming"
	TypeConfig = "config"
	// TypeConsole marks the console resources (console/users, ...) and
	// Ferry's operator endpoints: global admins only.
	TypeConsole = "console"
)

// Resource is what a request touches. Name is the service (ungrouped) or
// the dataId; empty fields mean "any".
type Resource struct {
	Namespace string
	Group     string
	Type      string
	Name      string
}

// String joins a resource as Nacos' NacosRoleServiceImpl.joinResource:
// "namespace:group:type/name", the public namespace written empty, a blank
// group or name as "*". A console resource is "console/<name>".
func (r Resource) String() string {
	if r.Type == TypeConsole {
		return "console/" + r.Name
	}
	var b strings.Builder
	if r.Namespace != "public" {
		b.WriteString(r.Namespace)
	}
	b.WriteByte(':')
	if strings.TrimSpace(r.Group) == "" {
		b.WriteByte('*')
	} else {
		b.WriteString(r.Group)
	}
	b.WriteByte(':')
	b.WriteString(strings.ToLower(r.Type))
	b.WriteByte('/')
	if strings.TrimSpace(r.Name) == "" {
		b.WriteByte('*')
	} else {
		b.WriteString(r.Name)
	}
	return b.String()
}

// User is a stored user. PasswordHash is bcrypt; it never leaves the node
// (no API returns it, no log line prints it).
type User struct {
	Username     string
	PasswordHash string
}

// RoleBinding binds a role to a user (Nacos' RoleInfo).
type RoleBinding struct {
	Role     string `json:"role"`
	Username string `json:"username"`
}

// Permission grants a role an action on a resource pattern, where "*"
// matches any run of characters (Nacos' PermissionInfo).
type Permission struct {
	Role     string `json:"role"`
	Resource string `json:"resource"`
	Action   string `json:"action"`
}

// Limits on names (users, roles) and resource patterns. Names keep to a
// conservative alphabet so that no user name can smuggle SQL, JSON, path or
// log syntax anywhere it is shown.
const (
	MaxNameLen     = 64
	MaxResourceLen = 512
	MaxPasswordLen = 72 // bcrypt reads at most 72 bytes
)

// ValidName reports why a user or role name is not acceptable (nil if it
// is): 1..MaxNameLen characters of [A-Za-z0-9_.@-].
func ValidName(kind, s string) error {
	if s == "" || len(s) > MaxNameLen {
		return fmt.Errorf("%w: %s must be 1..%d characters", ErrInvalidParam, kind, MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '@', c == '-':
		default:
			return fmt.Errorf("%w: %s may hold only letters, digits and _ . @ -", ErrInvalidParam, kind)
		}
	}
	return nil
}

func validResource(s string) error {
	if s == "" || len(s) > MaxResourceLen {
		return fmt.Errorf("%w: resource must be 1..%d characters", ErrInvalidParam, MaxResourceLen)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%w: resource may not hold spaces or control characters", ErrInvalidParam)
		}
	}
	return nil
}

func validAction(s string) error {
	switch s {
	case "r", "w", "rw":
		return nil
	}
	return fmt.Errorf("%w: action must be r, w or rw", ErrInvalidParam)
}

// Operations, one per Raft entry type (raftstore/auth.go). Ops are
// applied by State's Apply methods: pure functions of the state and the op.
const (
	OpCreate = "create"
	// OpBootstrap creates the user and makes it global admin, only if no
	// global admin exists yet (else it is a no-op): two nodes racing to
	// create the first admin end with one.
	OpBootstrap = "bootstrap"
	OpUpdate    = "update"
	OpDelete    = "delete"
	OpAdd       = "add"
)

// UserOp creates, updates (password) or deletes a user.
type UserOp struct {
	Op           string
	Username     string
	PasswordHash string `json:",omitempty"`
}

// RoleOp binds (add) or unbinds (delete) a role; a delete without
// Username removes the role from every user and its permissions.
type RoleOp struct {
	Op       string
	Role     string
	Username string `json:",omitempty"`
}

// PermissionOp adds or deletes a permission.
type PermissionOp struct {
	Op string
	Permission
}

// State is the auth data: immutable once built (Apply methods return a
// new State), so readers share it without locks.
type State struct {
	users map[string]User
	roles map[string][]string     // username → roles, sorted
	perms map[string][]Permission // role → permissions, in insertion order
}

// EmptyState has no users.
func EmptyState() *State {
	return &State{users: map[string]User{}, roles: map[string][]string{}, perms: map[string][]Permission{}}
}

func (s *State) clone() *State {
	n := &State{users: maps.Clone(s.users), roles: make(map[string][]string, len(s.roles)), perms: make(map[string][]Permission, len(s.perms))}
	for k, v := range s.roles {
		n.roles[k] = slices.Clone(v)
	}
	for k, v := range s.perms {
		n.perms[k] = slices.Clone(v)
	}
	return n
}

// User returns a stored user.
func (s *State) User(name string) (User, bool) {
	u, ok := s.users[name]
	return u, ok
}

// Usernames lists every user name, sorted.
func (s *State) Usernames() []string { return slices.Sorted(maps.Keys(s.users)) }

// Roles lists every binding, sorted by user then role.
func (s *State) Roles() []RoleBinding {
	var out []RoleBinding
	for _, u := range slices.Sorted(maps.Keys(s.roles)) {
		for _, r := range s.roles[u] {
			out = append(out, RoleBinding{Role: r, Username: u})
		}
	}
	return out
}

// Permissions lists every permission, sorted by role.
func (s *State) Permissions() []Permission {
	var out []Permission
	for _, r := range slices.Sorted(maps.Keys(s.perms)) {
		out = append(out, s.perms[r]...)
	}
	return out
}

// IsGlobalAdmin reports whether the user holds ROLE_ADMIN.
func (s *State) IsGlobalAdmin(user string) bool {
	return slices.Contains(s.roles[user], GlobalAdminRole)
}

// HasGlobalAdmin reports whether any user holds ROLE_ADMIN.
func (s *State) HasGlobalAdmin() bool {
	for _, rs := range s.roles {
		if slices.Contains(rs, GlobalAdminRole) {
			return true
		}
	}
	return false
}

func (s *State) roleExists(role string) bool {
	for _, rs := range s.roles {
		if slices.Contains(rs, role) {
			return true
		}
	}
	return false
}

// Allowed decides whether user may do action on res, as Nacos'
// NacosRoleServiceImpl.hasPermission: a global admin may do anything;
// console resources are for global admins only; otherwise some
// permission of some role of the user must name the action and match the
// joined resource in full.
func (s *State) Allowed(user string, res Resource, action Action) bool {
	roles := s.roles[user]
	if slices.Contains(roles, GlobalAdminRole) {
		return true
	}
	if res.Type == TypeConsole || len(roles) == 0 {
		return false
	}
	joined := res.String()
	for _, r := range roles {
		for _, p := range s.perms[r] {
			if strings.Contains(p.Action, string(action)) && globMatch(p.Resource, joined) {
				return true
			}
		}
	}
	return false
}

// globMatch matches s against pattern in full, "*" matching any run of
// characters (Nacos turns "*" into ".*" and matches the whole string; other
// characters are literal here, where Nacos would read them as regular
// expression syntax).
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}

// ApplyUser applies a user op; the result is a new State (s unchanged).
// Errors are domain errors (ErrInvalidParam, ErrExists, ErrNotFound).
func (s *State) ApplyUser(op UserOp) (*State, error) {
	if err := ValidName("username", op.Username); err != nil {
		return s, err
	}
	_, exists := s.users[op.Username]
	switch op.Op {
	case OpBootstrap:
		if s.HasGlobalAdmin() {
			return s, nil
		}
		n := s.clone()
		n.users[op.Username] = User{Username: op.Username, PasswordHash: op.PasswordHash}
		if !slices.Contains(n.roles[op.Username], GlobalAdminRole) {
			n.roles[op.Username] = sortedAdd(n.roles[op.Username], GlobalAdminRole)
		}
		return n, nil
	case OpCreate:
		if exists {
			return s, fmt.Errorf("%w: user '%s' already exist!", ErrExists, op.Username)
		}
		if op.PasswordHash == "" {
			return s, fmt.Errorf("%w: password is empty", ErrInvalidParam)
		}
		n := s.clone()
		n.users[op.Username] = User{Username: op.Username, PasswordHash: op.PasswordHash}
		return n, nil
	case OpUpdate:
		if !exists {
			return s, fmt.Errorf("%w: user %s not exist!", ErrNotFound, op.Username)
		}
		if op.PasswordHash == "" {
			return s, fmt.Errorf("%w: password is empty", ErrInvalidParam)
		}
		n := s.clone()
		n.users[op.Username] = User{Username: op.Username, PasswordHash: op.PasswordHash}
		return n, nil
	case OpDelete:
		if s.IsGlobalAdmin(op.Username) {
			return s, fmt.Errorf("%w: cannot delete admin: %s", ErrInvalidParam, op.Username)
		}
		if !exists {
			return s, nil
		}
		n := s.clone()
		delete(n.users, op.Username)
		delete(n.roles, op.Username)
		return n, nil
	}
	return s, fmt.Errorf("%w: user op %q", ErrInvalidParam, op.Op)
}

// ApplyRole applies a role op.
func (s *State) ApplyRole(op RoleOp) (*State, error) {
	if err := ValidName("role", op.Role); err != nil {
		return s, err
	}
	switch op.Op {
	case OpAdd:
		if err := ValidName("username", op.Username); err != nil {
			return s, err
		}
		if _, ok := s.users[op.Username]; !ok {
			return s, fmt.Errorf("%w: user '%s' not found!", ErrNotFound, op.Username)
		}
		if op.Role == GlobalAdminRole {
			return s, fmt.Errorf("%w: role '%s' is not permitted to create!", ErrInvalidParam, GlobalAdminRole)
		}
		if slices.Contains(s.roles[op.Username], op.Role) {
			return s, fmt.Errorf("%w: user '%s' already bound to the role '%s'!", ErrExists, op.Username, op.Role)
		}
		n := s.clone()
		n.roles[op.Username] = sortedAdd(n.roles[op.Username], op.Role)
		return n, nil
	case OpDelete:
		if op.Role == GlobalAdminRole {
			return s, fmt.Errorf("%w: role '%s' cannot be deleted", ErrInvalidParam, GlobalAdminRole)
		}
		n := s.clone()
		if op.Username != "" {
			n.roles[op.Username] = slices.DeleteFunc(n.roles[op.Username], func(r string) bool { return r == op.Role })
			if len(n.roles[op.Username]) == 0 {
				delete(n.roles, op.Username)
			}
		} else {
			for u := range n.roles {
				n.roles[u] = slices.DeleteFunc(n.roles[u], func(r string) bool { return r == op.Role })
				if len(n.roles[u]) == 0 {
					delete(n.roles, u)
				}
			}
			delete(n.perms, op.Role)
		}
		return n, nil
	}
	return s, fmt.Errorf("%w: role op %q", ErrInvalidParam, op.Op)
}

// ApplyPermission applies a permission op.
func (s *State) ApplyPermission(op PermissionOp) (*State, error) {
	p := op.Permission
	if err := ValidName("role", p.Role); err != nil {
		return s, err
	}
	if err := validResource(p.Resource); err != nil {
		return s, err
	}
	if err := validAction(p.Action); err != nil {
		return s, err
	}
	switch op.Op {
	case OpAdd:
		if !s.roleExists(p.Role) {
			return s, fmt.Errorf("%w: role %s not found!", ErrNotFound, p.Role)
		}
		if slices.Contains(s.perms[p.Role], p) {
			return s, fmt.Errorf("%w: duplicate permission", ErrExists)
		}
		n := s.clone()
		n.perms[p.Role] = append(n.perms[p.Role], p)
		return n, nil
	case OpDelete:
		n := s.clone()
		n.perms[p.Role] = slices.DeleteFunc(n.perms[p.Role], func(x Permission) bool { return x == p })
		if len(n.perms[p.Role]) == 0 {
			delete(n.perms, p.Role)
		}
		return n, nil
	}
	return s, fmt.Errorf("%w: permission op %q", ErrInvalidParam, op.Op)
}

func sortedAdd(xs []string, x string) []string {
	i, found := slices.BinarySearch(xs, x)
	if found {
		return xs
	}
	return slices.Insert(xs, i, x)
}

// Snapshot is the persisted form of a State (raftstore snapshots).
type Snapshot struct {
	Users       []User        `json:",omitempty"`
	Roles       []RoleBinding `json:",omitempty"`
	Permissions []Permission  `json:",omitempty"`
}

// Snapshot lists the state, sorted.
func (s *State) Snapshot() Snapshot {
	var sn Snapshot
	for _, u := range s.Usernames() {
		sn.Users = append(sn.Users, s.users[u])
	}
	sn.Roles = s.Roles()
	sn.Permissions = s.Permissions()
	return sn
}

// FromSnapshot rebuilds a State.
func FromSnapshot(sn Snapshot) *State {
	s := EmptyState()
	for _, u := range sn.Users {
		s.users[u.Username] = u
	}
	for _, r := range sn.Roles {
		s.roles[r.Username] = sortedAdd(s.roles[r.Username], r.Role)
	}
	for _, p := range sn.Permissions {
		s.perms[p.Role] = append(s.perms[p.Role], p)
	}
	return s
}
