/* bcryptprimitives.c: a stand-in for Windows 10's bcryptprimitives.dll,
 * for Wine 8 (Debian 12's), which lacks it. Rust's std on Windows imports
 * ProcessPrng from it (random seeds), so without it no Rust DLL or program
 * loads under that Wine. Test-only: .ci/cross.sh builds it into the Wine
 * prefix; real Windows (10 and later) has the DLL. Random bytes come from
 * RtlGenRandom (advapi32's SystemFunction036), which Wine has. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
    if (!SystemFunction036(data, chunk)) return FALSE;
    data += chunk;
    len -= chunk;
  }
  return TRUE;
}
