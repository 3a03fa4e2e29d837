/* under_asan.h: UNDER_ASAN is 1 in a build with AddressSanitizer (gcc or
 * clang), which owns malloc and the address space: tests that count
 * allocations or bound memory skip that part under it. Included by check.h;
 * on its own by programs that do not link the library directly. */
#ifndef STORECTX_UNDER_ASAN_H
#define STORECTX_UNDER_ASAN_H

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

#endif
