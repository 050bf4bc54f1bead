/*
 * guild_spawn: starts a process with posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK), no copy of
 * the parent's page tables) and reports its exit through a pidfd watched on Node's own event loop.
 *
 * Why: Node's child_process.spawn forks (libuv uses fork() on Linux). A fork of a Node process
 * copies its page tables and marks its memory copy-on-write; the parent then takes page faults on
 * the pages V8 writes next, and the child tears the copied address space down at exec. Measured
 * on a 2-core machine: ~6.5 ms of the parent's CPU per spawn of `/bin/sh -c true` from an idle
 * Node, against well under 1 ms with posix_spawn (bench/spawn.ts). A Guild worker or run that
 * starts hundreds of short tasks spends most of its CPU there.
 *
 * spawn(file, argv, env, cwd, stdoutFd, stderrFd, onExit, procs) -> pid
 *   The child: a new session and process group (setsid), stdin /dev/null, stdout and stderr the
 *   given descriptors, every signal at its default disposition and none blocked (Node ignores
 *   SIGPIPE; an ignored signal would otherwise stay ignored across exec), in `cwd`, and a member
 *   of the cgroups whose `cgroup.procs` files `procs` names before it execs (so that the task and
 *   all it starts are inside from its first instruction). It cannot join one: it writes
 *   "guild: cannot join the cgroup (<file>)" to its stderr and exits 125 without exec'ing.
 *   With no procs this is posix_spawn; with procs, the same done by hand: clone(CLONE_VM |
 *   CLONE_VFORK) on a stack of its own, signals blocked in the parent around it, as glibc's
 *   posix_spawn does (a shell that joins and then execs the task costs one more exec per task:
 *   ~6 ms of CPU on the machine this was measured on).
 *   Throws an Error with `code` (errno name) and `errno` when the process could not be started
 *   (e.g. ENOENT for a missing cwd or file).
 *   onExit(code, signal): code is the exit status or null, signal the signal number or null. It is
 *   called once, after the child was reaped; the process is reaped only here (libuv waits only
 *   for the pids it started itself).
 *
 * reduceMemory(): V8's LowMemoryNotification (memory.cc), for a process that has gone idle.
 * pipe(): [readFd, writeFd], close-on-exec, for a child's stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>

#include <node_api.h>
#include <uv.h>

#ifndef POSIX_SPAWN_SETSID
#define POSIX_SPAWN_SETSID 0x80
#endif

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  pid_t pid;
  int pidfd;
} watch_t;

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char message[256];
  const char *name = uv_err_name(uv_translate_sys_error(err));
  snprintf(message, sizeof message, "%s %s: %s", what, name, strerror(err));
  napi_value msg, error, code, number;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_set_named_property(env, error, "code", code);
  napi_create_int32(env, -err, &number);
  napi_set_named_property(env, error, "errno", number);
  napi_throw(env, error);
  return NULL;
}

/* A JS string as a malloc'd C string; NULL (with a pending exception) when it is not a string. */
static char *string_arg(napi_env env, napi_value value) {
  size_t len;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "Expected a string");
    return NULL;
  }
  char *s = malloc(len + 1);
  if (s == NULL) return NULL;
  napi_get_value_string_utf8(env, value, s, len + 1, &len);
  return s;
}

static void free_strings(char **list) {
  if (list == NULL) return;
  for (char **p = list; *p != NULL; p++) free(*p);
  free(list);
}

/* A JS array of strings as a NULL-terminated list; NULL with a pending exception on a bad element. */
static char **string_list(napi_env env, napi_value array) {
  uint32_t n;
  if (napi_get_array_length(env, array, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "Expected an array of strings");
    return NULL;
  }
  char **list = calloc(n + 1, sizeof(char *));
  if (list == NULL) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    napi_get_element(env, array, i, &item);
    list[i] = string_arg(env, item);
    if (list[i] == NULL) {
      free_strings(list);
      return NULL;
    }
  }
  return list;
}

static void on_close(uv_handle_t *handle) {
  watch_t *w = (watch_t *)handle;
  free(w);
}

static void on_exit_readable(uv_poll_t *poll, int status, int events) {
  watch_t *w = (watch_t *)poll;
  int wstatus = 0;
  pid_t r;
  do r = waitpid(w->pid, &wstatus, WNOHANG);
  while (r == -1 && errno == EINTR);
  if (r == 0) return; /* not yet (a spurious wake-up) */
  uv_poll_stop(&w->poll);
  close(w->pidfd);
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, global, args[2], result;
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_global(env, &global);
  if (r == w->pid && WIFEXITED(wstatus)) napi_create_int32(env, WEXITSTATUS(wstatus), &args[0]);
  else napi_get_null(env, &args[0]);
  if (r == w->pid && WIFSIGNALED(wstatus)) napi_create_int32(env, WTERMSIG(wstatus), &args[1]);
  else napi_get_null(env, &args[1]);
  napi_make_callback(env, w->context, global, cb, 2, args, &result);
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->context);
  napi_close_handle_scope(env, scope);
  uv_close((uv_handle_t *)&w->poll, on_close);
}


/* What the clone child needs; it shares the parent's memory (CLONE_VM) until it execs. */
typedef struct {
  const char *file;
  char **argv;
  char **envp;
  const char *cwd;
  int out_fd;
  int err_fd;
  char **procs;
  int err; /* set by the child when it could not start: the errno */
} child_args_t;

static size_t put_str(char *buf, size_t at, size_t cap, const char *s) {
  while (*s && at < cap) buf[at++] = *s++;
  return at;
}

static int child_main(void *p) {
  child_args_t *a = p;
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &dfl, NULL); /* glibc's own signals refuse: harmless */
  }
  if (setsid() < 0 || chdir(a->cwd) < 0) goto fail;
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull < 0) goto fail;
  if (devnull != 0 && (dup2(devnull, 0) < 0 || close(devnull) < 0)) goto fail;
  if (dup2(a->out_fd, 1) < 0 || dup2(a->err_fd, 2) < 0) goto fail;
  /* Its pid in decimal, without stdio (nothing that could allocate runs here). */
  char pid[24], rev[24];
  int n = 0, r = 0;
  long v = (long)getpid();
  do rev[r++] = (char)('0' + v % 10); while ((v /= 10) > 0);
  while (r > 0) pid[n++] = rev[--r];
  pid[n++] = '\n';
  for (char **f = a->procs; *f != NULL; f++) {
    int fd = open(*f, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, pid, n) != n) {
      char msg[4200];
      size_t at = put_str(msg, 0, sizeof msg - 2, "guild: cannot join the cgroup (");
      at = put_str(msg, at, sizeof msg - 2, *f);
      at = put_str(msg, at, sizeof msg - 2, ")\n");
      (void)!write(2, msg, at);
      _exit(125);
    }
    close(fd);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execve(a->file, a->argv, a->envp);
fail:
  a->err = errno;
  _exit(127);
}

/* Starts the child with the cgroup joins done in it; returns the pid, or -errno. */
static pid_t spawn_joining(child_args_t *a) {
  const size_t stack_size = 256 * 1024;
  char *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -errno;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  a->err = 0;
  pid_t pid = clone(child_main, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, a);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  munmap(stack, stack_size);
  if (pid < 0) return -clone_errno;
  if (a->err != 0) {
    /* It did not get as far as exec: reap it and say why. */
    int e = a->err;
    waitpid(pid, NULL, 0);
    return -e;
  }
  return pid;
}

static napi_value spawn_process(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value args[8];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 8) {
    napi_throw_type_error(env, NULL, "spawn(file, argv, env, cwd, stdoutFd, stderrFd, onExit, procs)");
    return NULL;
  }
  int32_t out_fd, err_fd;
  if (napi_get_value_int32(env, args[4], &out_fd) != napi_ok || napi_get_value_int32(env, args[5], &err_fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "Expected file descriptors for stdout and stderr");
    return NULL;
  }
  char *file = string_arg(env, args[0]);
  char *cwd = file ? string_arg(env, args[3]) : NULL;
  char **argv = cwd ? string_list(env, args[1]) : NULL;
  char **envp = argv ? string_list(env, args[2]) : NULL;
  char **procs = envp ? string_list(env, args[7]) : NULL;
  napi_value ret = NULL;
  if (procs == NULL) goto done;

  pid_t pid;
  if (procs[0] != NULL) {
    child_args_t a = {file, argv, envp, cwd, out_fd, err_fd, procs, 0};
    pid = spawn_joining(&a);
    if (pid < 0) {
      throw_errno(env, -pid, "spawn");
      goto done;
    }
    goto watch;
  }

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  posix_spawn_file_actions_addchdir_np(&actions, cwd);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  int err = posix_spawn(&pid, file, &actions, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    throw_errno(env, err, "spawn");
    goto done;
  }

watch:;
  /* A pidfd stays valid for a zombie, so an exit before this point is still seen. */
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  watch_t *w = pidfd >= 0 ? calloc(1, sizeof(watch_t)) : NULL;
  uv_loop_t *loop = NULL;
  if (w == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &w->poll, pidfd) != 0) {
    int e = pidfd < 0 ? errno : ENOMEM;
    /* Never leave a child nobody waits for. */
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (pidfd >= 0) close(pidfd);
    free(w);
    throw_errno(env, e, "watch");
    goto done;
  }
  w->env = env;
  w->pid = pid;
  w->pidfd = pidfd;
  napi_create_reference(env, args[6], 1, &w->callback);
  napi_value resource_name;
  napi_create_string_utf8(env, "guild:spawn", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &w->context);
  uv_poll_start(&w->poll, UV_READABLE, on_exit_readable);
  napi_create_int32(env, pid, &ret);

done:
  free(file);
  free(cwd);
  free_strings(argv);
  free_strings(envp);
  free_strings(procs);
  return ret;
}

/*
 * pipe() -> [readFd, writeFd], both close-on-exec: for a child's stdout (spawn dups the write end
 * onto its fd 1, which is then inherited). Node offers pipes only through child_process, which a
 * waiting `guild run` does not otherwise load (config/load-isolated.ts).
 */
static napi_value make_pipe(napi_env env, napi_callback_info info) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return throw_errno(env, errno, "pipe2");
  napi_value pair, fd;
  napi_create_array_with_length(env, 2, &pair);
  for (uint32_t i = 0; i < 2; i++) {
    napi_create_int32(env, fds[i], &fd);
    napi_set_element(env, pair, i, fd);
  }
  return pair;
}

/* memory.cc: V8's LowMemoryNotification (C++ API). */
napi_value guild_reduce_memory(napi_env env, napi_callback_info info);

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, spawn_process, NULL, &fn);
  napi_set_named_property(env, exports, "spawn", fn);
  napi_create_function(env, "reduceMemory", NAPI_AUTO_LENGTH, guild_reduce_memory, NULL, &fn);
  napi_set_named_property(env, exports, "reduceMemory", fn);
  napi_create_function(env, "pipe", NAPI_AUTO_LENGTH, make_pipe, NULL, &fn);
  napi_set_named_property(env, exports, "pipe", fn);
  return exports;
}
