// System calls Node does not offer: mknod, l*xattr, utimensat/futimens with nanoseconds, flock, mount, a
// network namespace (unshare, setns), and
// SOCK_SEQPACKET unix sockets (conmon's attach socket), which libuv cannot open.
// Each function is synchronous and throws an Error shaped like Node's own (code, errno, syscall, path).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "berth_native: bad arguments");     \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static const char *errno_code(int e) {
  switch (e) {
    case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case ENOTSUP: return "ENOTSUP";
    case ENODATA: return "ENODATA";
    case ERANGE: return "ERANGE";
    case EWOULDBLOCK: return "EWOULDBLOCK";
    case EBADF: return "EBADF";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EROFS: return "EROFS";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOTCONN: return "ENOTCONN";
    case ENOTSOCK: return "ENOTSOCK";
    case EBUSY: return "EBUSY";
    case ENODEV: return "ENODEV";
    default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, const char *syscall, const char *path) {
  int e = errno;
  char msg[4200];
  if (path)
    snprintf(msg, sizeof msg, "%s: %s, %s '%s'", errno_code(e), strerror(e), syscall, path);
  else
    snprintf(msg, sizeof msg, "%s: %s, %s", errno_code(e), strerror(e), syscall);
  napi_value m, err, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &err);
  napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "code", v);
  napi_create_int32(env, -e, &v);
  napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "syscall", v);
  if (path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, err, "path", v);
  }
  napi_throw(env, err);
  return NULL;
}

// Copies a JS string argument into a heap buffer; the caller frees it.
static char *get_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// mknod(path, mode, major, minor)
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t mode, major, minor;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_uint32(env, argv[1], &mode));
  CHECK(napi_get_value_uint32(env, argv[2], &major));
  CHECK(napi_get_value_uint32(env, argv[3], &minor));
  char *path = get_string(env, argv[0]);
  if (!path) { napi_throw_error(env, NULL, "berth_native: bad path"); return NULL; }
  int rc = mknod(path, mode, makedev(major, minor));
  napi_value r = rc == 0 ? undefined(env) : throw_errno(env, "mknod", path);
  free(path);
  return r;
}

// Reads (atimeSec, atimeNsec, mtimeSec, mtimeNsec) from argv[0..3] into ts; false after throwing.
static bool get_times(napi_env env, napi_value *argv, struct timespec ts[2]) {
  int64_t v[4];
  for (int i = 0; i < 4; i++) {
    if (napi_get_value_int64(env, argv[i], &v[i]) != napi_ok) {
      napi_throw_error(env, NULL, "berth_native: bad arguments");
      return false;
    }
  }
  ts[0] = (struct timespec){.tv_sec = v[0], .tv_nsec = v[1]};
  ts[1] = (struct timespec){.tv_sec = v[2], .tv_nsec = v[3]};
  return true;
}

// lutimes(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec): utimensat without following a final symlink.
static napi_value js_lutimes(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  struct timespec ts[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_times(env, argv + 1, ts)) return NULL;
  char *path = get_string(env, argv[0]);
  if (!path) { napi_throw_error(env, NULL, "berth_native: bad path"); return NULL; }
  int rc = utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
  napi_value r = rc == 0 ? undefined(env) : throw_errno(env, "utimensat", path);
  free(path);
  return r;
}

// futimes(fd, atimeSec, atimeNsec, mtimeSec, mtimeNsec): futimens, for a file still open (no path walk).
static napi_value js_futimes(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t fd;
  struct timespec ts[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  if (!get_times(env, argv + 1, ts)) return NULL;
  return futimens(fd, ts) == 0 ? undefined(env) : throw_errno(env, "futimens", NULL);
}

// lsetxattr(path, name, value: Buffer)
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  size_t argc = 3, len;
  napi_value argv[3];
  void *data;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_buffer_info(env, argv[2], &data, &len));
  char *path = get_string(env, argv[0]);
  char *name = get_string(env, argv[1]);
  napi_value r;
  if (!path || !name) { napi_throw_error(env, NULL, "berth_native: bad path"); r = NULL; }
  else r = lsetxattr(path, name, data, len, 0) == 0 ? undefined(env) : throw_errno(env, "lsetxattr", path);
  free(path);
  free(name);
  return r;
}

// lgetxattr(path, name) → Buffer, or undefined when the attribute is absent
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], r = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = get_string(env, argv[0]);
  char *name = get_string(env, argv[1]);
  if (!path || !name) { napi_throw_error(env, NULL, "berth_native: bad path"); goto out; }
  for (;;) {
    ssize_t n = lgetxattr(path, name, NULL, 0);
    if (n < 0) { r = errno == ENODATA ? undefined(env) : throw_errno(env, "lgetxattr", path); break; }
    void *buf;
    napi_value b;
    CHECK(napi_create_buffer(env, n, &buf, &b));
    ssize_t got = n == 0 ? 0 : lgetxattr(path, name, buf, n);
    if (got < 0 && errno == ERANGE) continue;  // grew in between
    if (got < 0) { r = throw_errno(env, "lgetxattr", path); break; }
    r = b;
    break;
  }
out:
  free(path);
  free(name);
  return r;
}

// llistxattr(path) → string[]
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], r = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = get_string(env, argv[0]);
  if (!path) { napi_throw_error(env, NULL, "berth_native: bad path"); return NULL; }
  for (;;) {
    ssize_t n = llistxattr(path, NULL, 0);
    if (n < 0) { r = throw_errno(env, "llistxattr", path); break; }
    char *buf = malloc(n + 1);
    ssize_t got = n == 0 ? 0 : llistxattr(path, buf, n);
    if (got < 0 && errno == ERANGE) { free(buf); continue; }
    if (got < 0) { free(buf); r = throw_errno(env, "llistxattr", path); break; }
    napi_create_array(env, &r);
    uint32_t i = 0;
    for (ssize_t off = 0; off < got;) {
      size_t l = strnlen(buf + off, got - off);
      napi_value s;
      napi_create_string_utf8(env, buf + off, l, &s);
      napi_set_element(env, r, i++, s);
      off += l + 1;
    }
    free(buf);
    break;
  }
  free(path);
  return r;
}

// Calls fn(a, b) with the two int32 arguments of a JS call (an fd and an operation).
static napi_value int_call(napi_env env, napi_callback_info info, int (*fn)(int, int), const char *syscall) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t a, b;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &a));
  CHECK(napi_get_value_int32(env, argv[1], &b));
  return fn(a, b) == 0 ? undefined(env) : throw_errno(env, syscall, NULL);
}

// flock(fd, operation): LOCK_SH 1, LOCK_EX 2, LOCK_NB 4, LOCK_UN 8
static napi_value js_flock(napi_env env, napi_callback_info info) { return int_call(env, info, flock, "flock"); }

// seqpacketConnect(path) → fd: a blocking AF_UNIX SOCK_SEQPACKET socket connected to path (one
// packet per read). Long paths can go through /proc/self/fd/N/NAME of an open directory.
static napi_value js_seqpacket_connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], r;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = get_string(env, argv[0]);
  if (!path) { napi_throw_error(env, NULL, "berth_native: bad path"); return NULL; }
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    r = throw_errno(env, "connect", path);
    free(path);
    return r;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) r = throw_errno(env, "socket", path);
  else if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    r = throw_errno(env, "connect", path);
    int e = errno;
    close(fd);
    errno = e;
  } else napi_create_int32(env, fd, &r);
  free(path);
  return r;
}

// shutdown(fd, how): SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2
static napi_value js_shutdown(napi_env env, napi_callback_info info) { return int_call(env, info, shutdown, "shutdown"); }

// mount(source, target, fstype, flags, data): fstype and data may be null (a bind or a remount).
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  uint32_t flags;
  napi_valuetype t;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_uint32(env, argv[3], &flags));
  char *src = get_string(env, argv[0]);
  char *target = get_string(env, argv[1]);
  char *fstype = NULL, *data = NULL;
  napi_typeof(env, argv[2], &t);
  if (t == napi_string) fstype = get_string(env, argv[2]);
  napi_typeof(env, argv[4], &t);
  if (t == napi_string) data = get_string(env, argv[4]);
  napi_value r;
  if (!src || !target) { napi_throw_error(env, NULL, "berth_native: bad path"); r = NULL; }
  else r = mount(src, target, fstype, flags, data) == 0 ? undefined(env) : throw_errno(env, "mount", target);
  free(src);
  free(target);
  free(fstype);
  free(data);
  return r;
}

// umount2(target, flags)
static napi_value js_umount(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t flags;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[1], &flags));
  char *target = get_string(env, argv[0]);
  if (!target) { napi_throw_error(env, NULL, "berth_native: bad path"); return NULL; }
  napi_value r = umount2(target, flags) == 0 ? undefined(env) : throw_errno(env, "umount2", target);
  free(target);
  return r;
}

// Brings `lo` up in the calling thread's network namespace, as runc does in one it creates.
static int loopback_up(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  int err = 0;
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) err = errno;
  else {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) err = errno;
  }
  close(fd);
  return err;
}

// netnsCreate(path): a new network namespace bound at `path` (an existing empty file), as `ip netns
// add` makes one, with lo up: the calling thread unshares its network namespace, bind-mounts the
// new one there and goes back to the one it had (only this thread moved, no JavaScript ran meanwhile).
static napi_value js_netns_create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = get_string(env, argv[0]);
  if (!path) { napi_throw_error(env, NULL, "berth_native: bad path"); return NULL; }
  napi_value r = undefined(env);
  int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig < 0) r = throw_errno(env, "open", "/proc/thread-self/ns/net");
  else if (unshare(CLONE_NEWNET) != 0) r = throw_errno(env, "unshare", path);
  else {
    int failed = mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) != 0 ? errno : 0;
    if (!failed) failed = loopback_up();
    if (setns(orig, CLONE_NEWNET) != 0) abort(); // a thread left in the new namespace would be worse than a crash
    if (failed) {
      errno = failed;
      r = throw_errno(env, "mount", path);
    }
  }
  if (orig >= 0) close(orig);
  free(path);
  return r;
}

// netnsConnect(nsPath, port): a TCP socket made in the network namespace at `nsPath` (a pod's) and
// connected to 127.0.0.1:port there; its fd. The calling thread enters the namespace only to make
// the socket (a socket keeps the namespace it was made in) and goes back before anything else runs.
static napi_value js_netns_connect(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = get_string(env, argv[0]);
  int port = 0;
  CHECK(napi_get_value_int32(env, argv[1], &port));
  if (!path || port <= 0 || port > 65535) { free(path); napi_throw_error(env, NULL, "berth_native: bad namespace or port"); return NULL; }
  napi_value r = NULL;
  int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int target = orig < 0 ? -1 : open(path, O_RDONLY | O_CLOEXEC);
  int sock = -1;
  if (orig < 0) r = throw_errno(env, "open", "/proc/thread-self/ns/net");
  else if (target < 0) r = throw_errno(env, "open", path);
  else if (setns(target, CLONE_NEWNET) != 0) r = throw_errno(env, "setns", path);
  else {
    sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int e = errno;
    if (setns(orig, CLONE_NEWNET) != 0) abort(); // a thread left in the pod's namespace would be worse than a crash
    errno = e;
    if (sock < 0) r = throw_errno(env, "socket", path);
    else {
      struct sockaddr_in addr;
      memset(&addr, 0, sizeof addr);
      addr.sin_family = AF_INET;
      addr.sin_port = htons((uint16_t)port);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0) {
        r = throw_errno(env, "connect", path);
        close(sock);
        sock = -1;
      }
    }
  }
  if (target >= 0) close(target);
  if (orig >= 0) close(orig);
  free(path);
  if (sock >= 0) CHECK(napi_create_int32(env, sock, &r));
  return r;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_default, NULL},
      {"lutimes", NULL, js_lutimes, NULL, NULL, NULL, napi_default, NULL},
      {"futimes", NULL, js_futimes, NULL, NULL, NULL, napi_default, NULL},
      {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_default, NULL},
      {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_default, NULL},
      {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_default, NULL},
      {"flock", NULL, js_flock, NULL, NULL, NULL, napi_default, NULL},
      {"seqpacketConnect", NULL, js_seqpacket_connect, NULL, NULL, NULL, napi_default, NULL},
      {"shutdown", NULL, js_shutdown, NULL, NULL, NULL, napi_default, NULL},
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
      {"umount", NULL, js_umount, NULL, NULL, NULL, napi_default, NULL},
      {"netnsCreate", NULL, js_netns_create, NULL, NULL, NULL, napi_default, NULL},
      {"netnsConnect", NULL, js_netns_connect, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
