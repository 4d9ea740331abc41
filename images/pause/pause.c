/*
 * Skiff's pause: the process that holds a pod sandbox's namespaces open.
 *
 * It does what upstream's pause container does (kubernetes build/pause): sit
 * as PID 1 of the pod doing nothing, reap any zombie re-parented to it (with a
 * shared PID namespace, orphans of the pod's containers land here), and leave
 * promptly on SIGINT/SIGTERM so stopping the sandbox never waits for a kill.
 * Built static so the image needs no libc: `gcc -static -Os -s pause.c`.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && argv[1][0] == '-' && argv[1][1] == 'v') {
    printf("skiff pause 1.0\n");
    return 0;
  }
  if (getpid() != 1) fprintf(stderr, "pause: warning: not running as PID 1\n");

  struct sigaction stop = {.sa_handler = on_stop};
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) pause();
}
