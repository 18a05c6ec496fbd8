// Packages: the OS packages of every role of the node, with the host's own apt or rpm, from
// the part of the bundle the extract step verified (installer/packages.cpp does the work).
#include "installer/packages.hpp"
#include "installer/steps/steps.hpp"

#include <spdlog/spdlog.h>

namespace kubexm {

Status install_os_packages(RoleContext& ctx) {
  std::size_t installed = 0;
  for (const auto& role : ctx.roles) {
    PackagesRequest request{ctx.request.bundle, role, "/", false, false, ctx.request.progress, ctx.extracted, true, {}};
    request.before_install = [&](const std::vector<std::string>& names) {
      installed += names.size();
      return ctx.effects->record_packages(names, ctx.packages->format);
    };
    auto report = install_packages(request);
    if (!report) {
      return add_context(report.error(), fmt::format("the OS packages of role {}", role));
    }
    spdlog::debug("{}", *report);
  }
  ctx.detail = installed == 0 ? fmt::format("all there already ({})", ctx.packages->profile)
                              : fmt::format("{} installed with {}, offline", installed,
                                            ctx.packages->format == "deb" ? "apt" : "rpm");
  return {};
}

} // namespace kubexm
