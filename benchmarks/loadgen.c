/* Load generator for benchmarks/aggregator_throughput.py (compiled at benchmark time).
 *
 * Sends pre-built datagrams (file: 4-byte little-endian length + bytes, repeated) to
 * 127.0.0.1:PORT at RATE datagrams/s for SECONDS, round-robin over NSOCK sockets (distinct
 * source ports, like distinct application processes), in sendmmsg batches. Prints the number
 * of datagrams sent. Bounded in time and count by its arguments.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: loadgen PORT RATE SECONDS NSOCK FILE\n");
        return 2;
    }
    int port = atoi(argv[1]);
    double rate = atof(argv[2]), seconds = atof(argv[3]);
    int nsock = atoi(argv[4]);
    FILE *f = fopen(argv[5], "rb");
    if (!f) { perror("open"); return 1; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc(size);
    if (fread(data, 1, size, f) != (size_t)size) { perror("read"); return 1; }
    fclose(f);
    long count = 0;
    for (long off = 0; off < size; count++) { uint32_t n; memcpy(&n, data + off, 4); off += 4 + n; }
    struct iovec *iov = calloc(count, sizeof *iov);
    long off = 0;
    for (long i = 0; i < count; i++) {
        uint32_t n; memcpy(&n, data + off, 4);
        iov[i].iov_base = data + off + 4; iov[i].iov_len = n; off += 4 + n;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    int *socks = calloc(nsock, sizeof *socks);
    for (int i = 0; i < nsock; i++) {
        socks[i] = socket(AF_INET, SOCK_DGRAM, 0);
        int buf = 4 << 20;
        setsockopt(socks[i], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        if (connect(socks[i], (struct sockaddr *)&to, sizeof to) < 0) { perror("connect"); return 1; }
    }
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    long sent = 0, next = 0, total = (long)(rate * seconds);
    int s = 0;
    double start = now();
    while (sent < total) {
        double elapsed = now() - start;
        if (elapsed > seconds + 2) break;  /* never run past the bound */
        long due = (long)(elapsed * rate) + 1;
        if (due > total) due = total;
        if (sent >= due) {
            struct timespec pause = {0, 50000};
            nanosleep(&pause, NULL);
            continue;
        }
        int n = due - sent > BATCH ? BATCH : (int)(due - sent);
        for (int i = 0; i < n; i++) {
            msgs[i].msg_hdr.msg_iov = &iov[(next + i) % count];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int r = sendmmsg(socks[s], msgs, n, 0);
        if (r < 0) {
            if (errno == ECONNREFUSED || errno == EAGAIN || errno == ENOBUFS) continue;
            perror("sendmmsg");
            break;
        }
        sent += r; next = (next + r) % count; s = (s + 1) % nsock;
    }
    printf("%ld %.3f\n", sent, now() - start);
    return 0;
}
