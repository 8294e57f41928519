# Copyright 2026 swarm test repository
# Distributed under the terms of the GNU General Public License v2

EAPI=8

DESCRIPTION="a library with a sub-slot"
HOMEPAGE="https://example.invalid/"
S=${WORKDIR}
LICENSE="MIT"
SLOT="0/2"
KEYWORDS="amd64"

src_compile() {
	echo "${CATEGORY}/${PF} USE='${USE}' CFLAGS='${CFLAGS}'" > "${T}/${PN}.txt" || die
}

src_install() {
	insinto /usr/share/${PN}
	newins "${T}/${PN}.txt" ${PN}-${SLOT%/*}.txt
}
