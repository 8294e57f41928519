# Copyright 2026 swarm test repository
# Distributed under the terms of the GNU General Public License v2

EAPI=8

DESCRIPTION="editor: USE-conditional deps, a := sub-slot dep, a BDEPEND, a PDEPEND"
HOMEPAGE="https://example.invalid/"
S=${WORKDIR}
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"
IUSE="+spell doc"
DEPEND="sw/core:= sw/compat:2 spell? ( sw/spell )"
RDEPEND="${DEPEND}"
BDEPEND="doc? ( sw/docgen )"
PDEPEND="sw/editor-plugins"

src_compile() {
	[[ -f ${ESYSROOT}/usr/share/core/core-0.txt ]] || die "build dependency sw/core (slot 0) is not installed in ${ESYSROOT}"
	[[ -f ${ESYSROOT}/usr/share/compat/compat-2.txt ]] || die "build dependency sw/compat (slot 2) is not installed in ${ESYSROOT}"
	if use spell; then [[ -f ${ESYSROOT}/usr/share/spell/spell-0.txt ]] || die "build dependency sw/spell (slot 0) is not installed in ${ESYSROOT}"; fi
	if use doc; then [[ -f ${BROOT}/usr/share/docgen/docgen-0.txt ]] || die "build tool sw/docgen (slot 0) is not installed in ${BROOT}"; fi
	echo "${CATEGORY}/${PF} USE='${USE}' CFLAGS='${CFLAGS}'" > "${T}/${PN}.txt" || die
}

src_install() {
	insinto /usr/share/${PN}
	newins "${T}/${PN}.txt" ${PN}-${SLOT%/*}.txt
}
