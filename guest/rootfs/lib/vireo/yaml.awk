# Flattens the YAML subset that cloud-init documents use into lines
# "PATH<TAB>VALUE", one per scalar, in document order. PATH joins map keys
# and sequence indexes with "." (runcmd.0.1, users.0.name); VALUE escapes
# backslash, newline and tab as \\ \n \t (flat.awk's unesc reverses it).
#
# Handles: block mappings and sequences nested by indentation (also "- key: v"
# items and sequences at their key's indentation), plain, 'single' and
# "double" quoted scalars, block scalars (| and > with - and + chomping),
# flow collections on one or several lines (so JSON, such as ConfigDrive's
# meta_data.json, parses too), comments and document markers. Anchors,
# aliases, tags and multi-line plain scalars are not supported.

function esc(s,   o, c) {
  o = ""
  while (match(s, /[\\\t\n]/)) {
    c = substr(s, RSTART, 1)
    o = o substr(s, 1, RSTART - 1) (c == "\\" ? "\\\\" : (c == "\n" ? "\\n" : "\\t"))
    s = substr(s, RSTART + 1)
  }
  return o s
}
function emit(path, v) { print path "\t" esc(v) }
function join(p, k) { return p == "" ? k : p "." k }
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
function is_dash(t) { return t == "-" || substr(t, 1, 2) == "- " }

# The text of a double-quoted scalar's inside, escapes resolved.
function dq(s,   o, c) {
  o = ""
  while (match(s, /\\./)) {
    c = substr(s, RSTART + 1, 1)
    o = o substr(s, 1, RSTART - 1)
    if (c == "n") o = o "\n"
    else if (c == "t") o = o "\t"
    else if (c == "r") o = o "\r"
    else if (c == "0") o = o ""
    else o = o c
    s = substr(s, RSTART + 2)
  }
  return o s
}
# Where the quote that opens s (at position 1) closes, or 0.
function close_quote(s,   q, i, c, n) {
  q = substr(s, 1, 1); n = length(s)
  for (i = 2; i <= n; i++) {
    c = substr(s, i, 1)
    if (q == "\"" && c == "\\") { i++; continue }
    if (c == q) {
      if (q == "'" && substr(s, i + 1, 1) == "'") { i++; continue }
      return i
    }
  }
  return 0
}
function scalar(s,   c, e, v) {
  s = trim(s); c = substr(s, 1, 1)
  if (c == "'" || c == "\"") {
    e = close_quote(s)
    if (e == 0) e = length(s) + 1
    v = substr(s, 2, e - 2)
    if (c == "\"") return dq(v)
    gsub(/''/, "'", v)
    return v
  }
  if (s == "~" || s == "null") return ""
  return s
}
# s without its trailing comment (a # at the start or after a blank, outside quotes).
function uncomment(s,   i, c, n, q) {
  if (index(s, "#") == 0) return s
  n = length(s); q = ""
  for (i = 1; i <= n; i++) {
    c = substr(s, i, 1)
    if (q != "") {
      if (q == "\"" && c == "\\") i++
      else if (q == "'" && c == "'" && substr(s, i + 1, 1) == "'") i++
      else if (c == q) q = ""
    } else if (c == "\"" || c == "'") {
      if (i == 1 || substr(s, i - 1, 1) ~ /[ \t\[{,:]/) q = c
    } else if (c == "#" && (i == 1 || substr(s, i - 1, 1) ~ /[ \t]/)) {
      return substr(s, 1, i - 1)
    }
  }
  return s
}
# Position of the ":" that ends a mapping key at the start of t, or 0.
function key_end(t,   c, e, r) {
  c = substr(t, 1, 1)
  if (c == "[" || c == "{") return 0
  if (c == "\"" || c == "'") {
    e = close_quote(t)
    if (e == 0 || substr(t, e + 1, 1) != ":") return 0
    r = substr(t, e + 2, 1)
    return (r == "" || r == " " || r == "\t") ? e + 1 : 0
  }
  if (match(t, /:([ \t]|$)/)) return RSTART
  return 0
}
# Bracket depth change over s, outside quotes.
function flow_balance(s,   i, c, n, q, d) {
  n = length(s); q = ""; d = 0
  for (i = 1; i <= n; i++) {
    c = substr(s, i, 1)
    if (q != "") {
      if (q == "\"" && c == "\\") i++
      else if (c == q) q = ""
    } else if (c == "\"" || c == "'") q = c
    else if (c == "[" || c == "{") d++
    else if (c == "]" || c == "}") d--
  }
  return d
}

# --- flow collections: a small recursive-descent parser over FT from FP ---
function fws() { while (substr(FT, FP, 1) ~ /[ \t\n]/ && FP <= length(FT)) FP++ }
function fscalar(iskey,   c, e, rest, v) {
  fws(); c = substr(FT, FP, 1)
  if (c == "\"" || c == "'") {
    rest = substr(FT, FP)
    e = close_quote(rest)
    if (e == 0) e = length(rest)
    FP += e
    return scalar(substr(rest, 1, e))
  }
  rest = substr(FT, FP)
  if (iskey ? match(rest, /:[ \t]|[],}]|:$/) : match(rest, /[],}]/)) {
    v = substr(rest, 1, RSTART - 1); FP += RSTART - 1
  } else { v = rest; FP += length(rest) }
  return scalar(v)
}
function fvalue(path,   c, i, k) {
  fws(); c = substr(FT, FP, 1)
  if (c == "[") {
    FP++; i = 0
    for (;;) {
      fws(); c = substr(FT, FP, 1)
      if (c == "]" || c == "") { FP++; return }
      fvalue(join(path, i++))
      fws(); c = substr(FT, FP, 1)
      if (c == ",") FP++
      else if (c != "]") { FP = length(FT) + 1; return }
    }
  }
  if (c == "{") {
    FP++
    for (;;) {
      fws(); c = substr(FT, FP, 1)
      if (c == "}" || c == "") { FP++; return }
      k = fscalar(1); fws()
      if (substr(FT, FP, 1) == ":") { FP++; fvalue(join(path, k)) } else emit(join(path, k), "")
      fws(); c = substr(FT, FP, 1)
      if (c == ",") FP++
      else if (c != "}") { FP = length(FT) + 1; return }
    }
  }
  emit(path, fscalar(0))
}
function flow(path, text) { FT = text; FP = 1; fvalue(path) }

# --- block structure ---
function push(ind, path, type) { depth++; lind[depth] = ind; lpath[depth] = path; ltype[depth] = type; lcnt[depth] = 0 }

# A value v for path, on a line whose owner (key or dash) sits at indent owner.
function value(path, v, owner) {
  v = trim(v)
  sub(/^!![a-z]+[ \t]+/, "", v)
  if (v == "") { pend = path; pind = owner; return }
  if (v ~ /^[|>][-+0-9]*$/) {
    blk = 1; bpath = path; bowner = owner; bind = 0; btext = ""; bblank = ""
    bstyle = substr(v, 1, 1); bchomp = (v ~ /-/) ? "-" : ((v ~ /\+/) ? "+" : "")
    return
  }
  if (v ~ /^[\[{]/) {
    if (flow_balance(v) > 0) { facc = v; fpath = path; return }
    flow(path, v); return
  }
  emit(path, scalar(v))
}
function map_entry(ind, t,   e, k) {
  e = key_end(t)
  if (e == 0) return
  k = scalar(substr(t, 1, e - 1))
  value(join(lpath[depth], k), substr(t, e + 1), ind)
}
function item(ind, t,   rest, n, idx, path, cind) {
  idx = lcnt[depth]++
  path = join(lpath[depth], idx)
  rest = substr(t, 2)
  n = match(rest, /[^ \t]/)
  if (n == 0) { pend = path; pind = ind; return }
  cind = ind + n; rest = substr(rest, n)
  if (is_dash(rest)) { push(cind, path, "seq"); line(cind, rest); return }
  if (key_end(rest) > 0) { push(cind, path, "map"); map_entry(cind, rest); return }
  value(path, rest, ind)
}
function line(ind, t) {
  if (pend != "") {
    if (ind > pind || (ind == pind && is_dash(t))) push(ind, pend, is_dash(t) ? "seq" : "map")
    else emit(pend, "")
    pend = ""
  }
  if (depth == 0) {
    if (t ~ /^[\[{]/) { value("", t, -1); return }
    push(ind, "", is_dash(t) ? "seq" : "map")
  }
  while (depth > 1 && (ind < lind[depth] || (ind == lind[depth] && ltype[depth] == "seq" && !is_dash(t)))) depth--
  if (is_dash(t)) { if (ltype[depth] == "seq") item(ind, t) }
  else if (ltype[depth] == "map") map_entry(ind, t)
}
function end_block(   v) {
  v = btext
  if (bchomp == "+") v = v "\n" bblank
  else if (bchomp == "" && v != "") v = v "\n"
  emit(bpath, v); blk = 0
}
function block_line(raw,   ind, s) {
  s = raw; sub(/^ +/, "", s); ind = length(raw) - length(s)
  if (s == "") { bblank = bblank "\n"; return 1 }
  if (bind == 0) { if (ind <= bowner) return 0; bind = ind }
  if (ind < bind) return 0
  s = substr(raw, bind + 1)
  if (btext == "") btext = s
  else if (bstyle == ">" && bblank == "" && s !~ /^[ \t]/) btext = btext " " s
  else btext = btext "\n" ((bstyle == ">" && bblank != "") ? substr(bblank, 2) : bblank) s
  bblank = ""
  return 1
}

BEGIN { depth = 0; pend = ""; blk = 0; facc = "" }
{
  sub(/\r$/, "")
  if (blk) { if (block_line($0)) next; end_block() }
  if (facc != "") {
    facc = facc "\n" $0
    if (flow_balance(facc) <= 0) { flow(fpath, facc); facc = "" }
    next
  }
  t = uncomment($0)
  if (t ~ /^(---|\.\.\.)([ \t]|$)/) next
  s = t; sub(/^ +/, "", s)
  s = trim(s)
  if (s == "") next
  line(length(t) - length(substr(t, match(t, /[^ ]/))), s)
}
END {
  if (blk) end_block()
  if (facc != "") flow(fpath, facc)
  if (pend != "") emit(pend, "")
}
