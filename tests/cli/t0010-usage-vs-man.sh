# t0010: every tool's --help usage equals its man page SYNOPSIS, and the long
# options in longopts[] (hidden --list-options) equal the ones the page documents.
. tests/cli/lib.sh

render() { mandoc -Tascii "$1" 2>/dev/null | sed 's/.\x08//g'; }
norm() { tr -s ' \t\n' '   ' | sed 's/^ //; s/ $//'; }

for page in man/apr-*.1; do
    tool=$(basename "$page" .1)
    if [ ! -x "$BUILD/$tool" ]; then
        skip "$tool synopsis" "no $BUILD/$tool"
        continue
    fi
    syn=$(render "$page" | sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | norm)
    use=$("$BUILD/$tool" --help | sed -n '1,/^$/p' | sed 's/^usage: //; s/^       //' | norm)
    if [ -n "$syn" ] && [ "$syn" = "$use" ]; then
        _rec pass "$tool synopsis equals usage"
    else
        _fail "$tool synopsis equals usage" "man:   $syn" "usage: $use"
    fi
    opts=$("$BUILD/$tool" --list-options | sort)
    doc=$(grep -o 'Fl \\-[a-z0-9-]*' "$page" | sed 's/Fl \\-/--/' | sort -u)
    if [ "$opts" = "$doc" ]; then
        _rec pass "$tool options documented"
    else
        _fail "$tool options documented" "longopts:" "$opts" "man page:" "$doc"
    fi
done

# One meaning of -j in every tool: --json (threads are -t N / --threads N).
for t in "$BUILD"/apr-*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    testing "$n: -j is --json" "$t --help | grep -E '^ +-j,' | sed 's/^ *//; s/  .*//'" \
        "-j, --json"
done

# Every tool: --version prints one line and exits 0; an unknown option exits 2.
for t in "$BUILD"/apr-*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    expect_match "$n --version" "^$n \\(apr-tools\\) [0-9]" "$t --version"
    expect_exit "$n unknown option" 2 "$t --no-such-option"
done
