#pragma once

namespace kubexm {

// Installs SIGINT/SIGTERM handlers that only raise a flag; long loops poll it and unwind
// with ErrorKind::interrupted, so cleanup runs and the exit status is 130.
void install_interrupt_handlers();

// Whether SIGINT or SIGTERM has arrived.
bool interrupt_requested();

} // namespace kubexm
