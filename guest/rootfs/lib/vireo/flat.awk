# Reads yaml.awk's output ("PATH<TAB>VALUE" lines). unesc() reverses its
# escaping of VALUE; run alone with -v get=PATH, prints that value (exit
# status 1 when the document has no such path).
function unesc(s,   o, c) {
  o = ""
  while (match(s, /\\./)) {
    c = substr(s, RSTART + 1, 1)
    o = o substr(s, 1, RSTART - 1) (c == "n" ? "\n" : (c == "t" ? "\t" : c))
    s = substr(s, RSTART + 2)
  }
  return o s
}
BEGIN { FS = "\t" }
get != "" && $1 == get { printf "%s", unesc(substr($0, length($1) + 2)); found = 1; exit }
END { if (get != "") exit !found }
