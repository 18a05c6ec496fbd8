#pragma once

namespace kubexm {

// The installer program: everything main() does, returning the exit status.
int installer_main(int argc, char** argv);

} // namespace kubexm
