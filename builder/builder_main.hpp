#pragma once

namespace kubexm {

// The builder program: everything main() does, returning the exit status.
int builder_main(int argc, char** argv);

} // namespace kubexm
