#include "builder/builder_main.hpp"

int main(int argc, char** argv) {
  return kubexm::builder_main(argc, argv);
}
