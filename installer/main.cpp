#include "installer/installer_main.hpp"

int main(int argc, char** argv) {
  return kubexm::installer_main(argc, argv);
}
