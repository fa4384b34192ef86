#include <stdio.h>
#include <string.h>

/* The decimal digits of `value`, through the C library: proves the target's libc links and runs. */
size_t c_digits(long long value) {
    char buffer[32];
    int written = snprintf(buffer, sizeof buffer, "%lld", value < 0 ? -value : value);
    return written < 0 ? 0 : strlen(buffer);
}
