// Images: the bundle's images for this host's arch into the node's runtime once it answers
// (installer/images.cpp does the work: only what the runtime lacks, checked by digest).
#include "installer/images.hpp"
#include "installer/steps/steps.hpp"

#include <spdlog/spdlog.h>

namespace kubexm {

Status import_node_images(RoleContext& ctx) {
  if (ctx.runtime == "cri-o") {
    ctx.detail = "CRI-O keeps images in containers-storage, which the installer does not fill yet: none imported";
    return {};
  }
  ImagesRequest request{ctx.request.bundle, ctx.runtime, "/", "", "k8s.io", false, false, ctx.request.progress};
  auto report = install_images(request);
  if (!report) {
    return std::unexpected(report.error());
  }
  spdlog::debug("{}", *report);
  auto last = report->find_last_of('\n', report->size() - 2);
  ctx.detail = report->substr(last == std::string::npos ? 0 : last + 1);
  if (!ctx.detail.empty() && ctx.detail.back() == '\n') {
    ctx.detail.pop_back();
  }
  return {};
}

} // namespace kubexm
