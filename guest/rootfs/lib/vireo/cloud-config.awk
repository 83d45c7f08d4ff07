# Compiles a flattened #cloud-config (yaml.awk's output) into shell for
# vireo-cloud-init: DIR/config.sh (write_files, bootcmd, users, ssh keys,
# passwords) and DIR/final.sh (deferred write_files, runcmd), as calls to
# its ci_* functions; file contents go to DIR/files/N, runcmd and bootcmd
# to DIR/runcmd and DIR/bootcmd.
# Run as: awk -v dir=DIR -f flat.awk -f cloud-config.awk FLAT

# s as one single-quoted shell word.
function q(s,   n, a, i, o) {
  n = split(s, a, "'"); o = a[1]
  for (i = 2; i <= n; i++) o = o "'\\''" a[i]
  return "'" o "'"
}
function has(k) { return k in val }
function get(k) { return (k in val) ? val[k] : "" }
function truthy(s) { s = tolower(s); return s == "true" || s == "yes" || s == "on" || s == "1" }
function cmds(top, file,   i, n) {
  n = cnt[top] + 0
  if (n == 0 && has(top) && get(top) != "") { printf "%s\n", get(top) > file; n = 1 }
  for (i = 0; i < cnt[top]; i++) if ((top SUBSEP i) in cmd) print cmd[top, i] > file
  close(file)
  return n
}
function write_files(deferred, out,   i, p, f) {
  for (i = 0; i < cnt["write_files"]; i++) {
    p = "write_files." i
    if (truthy(get(p ".defer")) != deferred) continue
    if (get(p ".path") == "") { print "ci_warn " q("write_files[" i "] has no path; skipped") > out; continue }
    f = dir "/files/" i
    printf "%s", get(p ".content") > f; close(f)
    print "ci_write_file " q(get(p ".path")) " " q(get(p ".permissions")) " " q(get(p ".owner")) " " q(get(p ".encoding")) " " q(get(p ".append")) " " q(f) > out
  }
}
function password(user, secret, kind, out) {
  if (kind == "") kind = (secret ~ /^\$[0-9a-z]+\$/) ? "hash" : "text"
  if (toupper(secret) == "R" || toupper(secret) == "RANDOM" || tolower(kind) == "random") {
    print "ci_warn " q("random password for " user " is not supported; skipped") > out
    return
  }
  print "ci_password " q(user) " " q(secret) " " q(tolower(kind)) > out
}
BEGIN {
  split("hostname fqdn runcmd bootcmd write_files users ssh_authorized_keys password chpasswd", k, " ")
  for (i in k) known[k[i]] = 1
  split("ssh_pwauth disable_root manage_etc_hosts preserve_hostname prefer_fqdn_over_hostname ssh_deletekeys ssh_genkeytypes", k, " ")
  for (i in k) quiet[k[i]] = 1
}
{
  key = $1; v = unesc(substr($0, length($1) + 2))
  val[key] = v
  n = split(key, p, ".")
  top = p[1]
  if (!(top in seen)) { seen[top] = 1; order[++ntop] = top }
  if (n >= 2 && p[2] ~ /^[0-9]+$/ && p[2] + 1 > cnt[top]) cnt[top] = p[2] + 1
  if ((top == "runcmd" || top == "bootcmd") && n >= 2) {
    if (n == 2) cmd[top, p[2]] = v
    else if (n == 3 && p[3] ~ /^[0-9]+$/) {
      # A list item runs as an argument vector: quote each word.
      if ((top SUBSEP p[2]) in cmd) cmd[top, p[2]] = cmd[top, p[2]] " " q(v)
      else cmd[top, p[2]] = q(v)
    }
  }
}
END {
  cfg = dir "/config.sh"; fin = dir "/final.sh"
  printf "" > cfg; printf "" > fin
  for (i = 1; i <= ntop; i++)
    if (!(order[i] in known) && !(order[i] in quiet)) print "ci_warn " q("unsupported key " order[i] " ignored") > cfg

  write_files(0, cfg)
  if (cmds("bootcmd", dir "/bootcmd") > 0) print "ci_run bootcmd " q(dir "/bootcmd") > cfg

  if (has("users") && get("users") != "") { nu = split(get("users"), names, ","); for (i = 1; i <= nu; i++) print "ci_user " q(names[i]) " ''" > cfg }
  for (i = 0; i < cnt["users"]; i++) {
    p = "users." i
    if (has(p)) continue  # "- default": the default user is root, which exists
    user = get(p ".name")
    if (user == "") { print "ci_warn " q("users[" i "] has no name; skipped") > cfg; continue }
    print "ci_user " q(user) " " q(get(p ".shell")) > cfg
    for (j = 0; has(p ".ssh_authorized_keys." j); j++) print "ci_ssh_key " q(user) " " q(get(p ".ssh_authorized_keys." j)) > cfg
    if (has(p ".plain_text_passwd")) password(user, get(p ".plain_text_passwd"), "text", cfg)
    if (has(p ".passwd")) password(user, get(p ".passwd"), "hash", cfg)
    if (has(p ".hashed_passwd")) password(user, get(p ".hashed_passwd"), "hash", cfg)
  }
  for (j = 0; has("ssh_authorized_keys." j); j++) print "ci_ssh_key root " q(get("ssh_authorized_keys." j)) > cfg

  if (has("password")) password("root", get("password"), "", cfg)
  n = split(get("chpasswd.list"), lines, "\n")
  for (j = 0; has("chpasswd.list." j); j++) lines[++n] = get("chpasswd.list." j)
  for (i = 1; i <= n; i++) {
    c = index(lines[i], ":")
    if (c > 1) password(substr(lines[i], 1, c - 1), substr(lines[i], c + 1), "", cfg)
  }
  for (j = 0; has("chpasswd.users." j ".name"); j++)
    password(get("chpasswd.users." j ".name"), get("chpasswd.users." j ".password"), get("chpasswd.users." j ".type"), cfg)
  # cloud-init expires the passwords it sets unless told not to.
  if (has("password") || n > 0 || j > 0) print "ci_expire " q((has("chpasswd.expire") && !truthy(get("chpasswd.expire"))) ? "false" : "true") > cfg

  write_files(1, fin)
  if (cmds("runcmd", dir "/runcmd") > 0) print "ci_run runcmd " q(dir "/runcmd") > fin
  close(cfg); close(fin)
}
