# The installer must run on any Linux of its arch: fully static, and free of network and
# solver code (the CMake link guard stops that at configure time; this checks the result).
source "$(dirname "$0")/../lib.sh"

file "$INSTALLER" | grep -q "statically linked" || fail "file does not say statically linked: $(file "$INSTALLER")"
pass "file: statically linked"

ldd_out=$(ldd "$INSTALLER" 2>&1 || true)
echo "$ldd_out" | grep -q "not a dynamic executable" || fail "ldd says: $ldd_out"
pass "ldd: not a dynamic executable"

if readelf -lW "$INSTALLER" | grep -q INTERP; then
  fail "the installer has a PT_INTERP segment (needs a dynamic loader)"
fi
pass "no program interpreter"

# Symbols (or, stripped, their strings) that only libcurl and libsolv carry.
for marker in curl_easy_init curl_multi_perform pool_create solver_solve repo_add_solv; do
  if grep -qa "$marker" "$INSTALLER"; then
    fail "the installer contains '$marker': it links libcurl or libsolv"
  fi
done
pass "no libcurl or libsolv code"

"$INSTALLER" --version | grep -q "install (kubexm)" || fail "--version"
pass "runs: $("$INSTALLER" --version)"
