# t0020: the man pages render cleanly and agree with the tools and the README:
# one EXIT STATUS text per page, quotes that close (apr-hash(1) MANIFESTS), and apr(5)
# SEE ALSO names every tool.
. tests/cli/lib.sh

if ! command -v mandoc >/dev/null 2>&1; then
    skip "man pages" "no mandoc"
    exit 0
fi
# the page as text, backspace overstrikes removed
page_text() { mandoc -Tascii "$1" 2>/dev/null | sed 's/.\x08//g'; }

for page in man/*.[1-9]; do
    n=$(basename "$page")
    # .Ex -std plus a hand-written sentence said "0 on success" twice
    k=$(page_text "$page" | sed -n '/^EXIT STATUS/,/^[A-Z]/p' | tr '\n' ' ' |
        grep -o '0  *on  *success' | wc -l)
    testing "$n EXIT STATUS says it once" "echo $((k > 1))" "0"
    # a quote opened and never closed: nested .Ql in .Brq rendered {`path, `sha256'''}
    k=$(page_text "$page" | grep -c "''\|\`[a-z_]*,")
    testing "$n quotes close" "echo $k" "0"
done

# apr(5) SEE ALSO: every tool that has a man page
for page in man/apr-*.1; do
    t=$(basename "$page" .1)
    expect_match "apr.5 SEE ALSO names $t" "$t\\(1\\)" \
        "mandoc -Tascii man/apr.5 | sed 's/.\\x08//g' | sed -n '/^SEE ALSO/,\$p'"
done
