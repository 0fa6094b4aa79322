{
  "targets": [
    {
      "target_name": "mcrs",
      "sources": ["src/addon.c"],
      "include_dirs": ["../../include"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"],
      "libraries": [
        "-L<(module_root_dir)/../../target/release",
        "-lmcrs",
        "-Wl,-rpath,<(module_root_dir)/../../target/release"
      ]
    }
  ]
}
