# Copyright 2026 swarm test repository
# Distributed under the terms of the GNU General Public License v2

EAPI=8

DESCRIPTION="viewer: USE-conditional dep, || ( ), the old slot"
HOMEPAGE="https://example.invalid/"
S=${WORKDIR}
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"
IUSE="ssl"
DEPEND="ssl? ( sw/tls ) || ( sw/backend-a sw/backend-b ) sw/compat:1"
RDEPEND="${DEPEND}"

src_compile() {
	[[ -f ${ESYSROOT}/usr/share/compat/compat-1.txt ]] || die "build dependency sw/compat (slot 1) is not installed in ${ESYSROOT}"
	if use ssl; then [[ -f ${ESYSROOT}/usr/share/tls/tls-0.txt ]] || die "build dependency sw/tls (slot 0) is not installed in ${ESYSROOT}"; fi
	[[ -f ${ESYSROOT}/usr/share/backend-a/backend-a-0.txt || -f ${ESYSROOT}/usr/share/backend-b/backend-b-0.txt ]] || die "no backend is installed in ${ESYSROOT}"
	echo "${CATEGORY}/${PF} USE='${USE}' CFLAGS='${CFLAGS}'" > "${T}/${PN}.txt" || die
}

src_install() {
	insinto /usr/share/${PN}
	newins "${T}/${PN}.txt" ${PN}-${SLOT%/*}.txt
}
